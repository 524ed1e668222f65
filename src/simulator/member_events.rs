//! The simulator as the admin console changing who may log in, with the callbacks WeCom sends
//! for it (wecom-api.md §11, and the official event reference for `unsubscribe`): a member
//! renamed (`change_contact` / `update_user` with `NewUserID`, §8), a member deleted
//! (`delete_user`), a member's status changed (`update_user` with
//! `Status`, as callback URLs set before 2022-08-15 receive it), and an app's visible range
//! changed (`unsubscribe` to the app for each member taken out of it, `subscribe` for each one
//! added: official doc 90376, 成员关注及取消关注事件 — "管理员添加成员到应用可见范围(或移除可见范围)时").

use super::callbacks::{CallbackTarget, Delivery};
use super::corp::{Scope, VisibleRange};
use super::directory::Directory;
use super::Simulator;

impl Simulator {
    /// Renames member `old` to `new` in the simulated directory (an admin changing a
    /// system-generated UserId, wecom-api.md §8) and delivers the `change_contact` /
    /// `update_user` event with `UserID` = `old`, `NewUserID` = `new` to `target`, encrypted
    /// and signed like WeCom. Fails when `old` is no member or the delivery cannot be made.
    pub async fn rename_member_and_notify(
        &self,
        old: &str,
        new: &str,
        target: &CallbackTarget,
    ) -> Result<Delivery, String> {
        let old_id = self.change_member(old, |d| d.rename_member(old, new))?;
        let msg = self.contact_change(
            "update_user",
            &format!(
                "<UserID><![CDATA[{old_id}]]></UserID><NewUserID><![CDATA[{new}]]></NewUserID>"
            ),
        );
        self.deliver(target, &msg).await
    }

    /// Deletes member `userid` from the primary corp's directory and delivers the
    /// `delete_user` event to `target`. Fails when there is no such member or the delivery
    /// cannot be made.
    pub async fn delete_member_and_notify(
        &self,
        userid: &str,
        target: &CallbackTarget,
    ) -> Result<Delivery, String> {
        let member = self.change_member(userid, |d| d.remove_member(userid))?;
        let msg = self.contact_change(
            "delete_user",
            &format!("<UserID><![CDATA[{}]]></UserID>", member.userid),
        );
        self.deliver(target, &msg).await
    }

    /// Sets member `userid`'s `status` (§6: 1 active, 2 disabled, 4 not activated, 5 left) in
    /// the primary corp and delivers `update_user` with `UserID` and `Status` to `target`.
    pub async fn set_member_status_and_notify(
        &self,
        userid: &str,
        status: i64,
        target: &CallbackTarget,
    ) -> Result<Delivery, String> {
        if !self.set_member_status(userid, status) {
            return Err(format!(
                "{userid} is not a member, or {status} is no status"
            ));
        }
        let msg = self.contact_change(
            "update_user",
            &format!("<UserID><![CDATA[{userid}]]></UserID><Status>{status}</Status>"),
        );
        self.deliver(target, &msg).await
    }

    /// Replaces the visible range of the primary corp's app `agent_id` (§12) and delivers
    /// to `target` an `unsubscribe` event for each member it no longer covers and a `subscribe`
    /// event for each one it now covers, in directory order.
    pub async fn set_visible_range_and_notify(
        &self,
        agent_id: i64,
        range: VisibleRange,
        target: &CallbackTarget,
    ) -> Result<Vec<Delivery>, String> {
        let corp_id = self.config().corp_id.clone();
        let changes: Vec<(String, &str)> = {
            let mut state = self.lock();
            let corp = state.primary_mut();
            let old = corp
                .app(agent_id)
                .ok_or_else(|| format!("no app {agent_id} in {corp_id}"))?
                .range
                .clone();
            let before = Scope::of(&corp.directory, &old, false);
            let after = Scope::of(&corp.directory, &range, false);
            let changes = corp
                .directory
                .members()
                .iter()
                .filter_map(|m| match (before.sees_member(m), after.sees_member(m)) {
                    (true, false) => Some((m.userid.clone(), "unsubscribe")),
                    (false, true) => Some((m.userid.clone(), "subscribe")),
                    _ => None,
                })
                .collect();
            if let Some(app) = corp.app_mut(agent_id) {
                app.range = range;
            }
            changes
        };
        let mut deliveries = Vec::with_capacity(changes.len());
        for (userid, event) in changes {
            let msg = format!(
                "<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>\
                 <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
                 <Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey>\
                 <AgentID>{agent_id}</AgentID></xml>",
                self.now()
            );
            deliveries.push(self.deliver(target, &msg).await?);
        }
        Ok(deliveries)
    }

    /// Runs `change` on the primary corp's directory; `None` from it means `userid` is no
    /// member there.
    fn change_member<T>(
        &self,
        userid: &str,
        change: impl FnOnce(&mut Directory) -> Option<T>,
    ) -> Result<T, String> {
        change(&mut self.lock().primary_mut().directory)
            .ok_or_else(|| format!("{userid} is not a member"))
    }

    /// A `change_contact` message of `change_type` with `fields` (§11).
    fn contact_change(&self, change_type: &str, fields: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
             <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
             <Event><![CDATA[change_contact]]></Event><ChangeType>{change_type}</ChangeType>{fields}</xml>",
            self.config().corp_id,
            self.now()
        )
    }
}
