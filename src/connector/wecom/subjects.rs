//! Which `sub` a WeCom member logs in as, and how it follows them: the link from a UserId to its
//! `sub` (qualified by corp unless it is the home corp's, wecom-api.md §12), UserId renames
//! recorded from `change_contact` callbacks (§8, §11), and retired UserIds whose next holder gets
//! a fresh `sub`.

use super::{linked_userid, WeComConnector, RETIRED_USERID};
use crate::connector::{ConnectorError, Identity};

impl WeComConnector {
    /// Store key of the link from a UserId to the `sub` it logs in as (UserIds are
    /// case-insensitive, wecom-api.md §6, so the key is lower-cased).
    pub(super) fn id_link_key(&self, userid: &str) -> String {
        format!(
            "wecom:{}:id:{}",
            self.settings.corp_id,
            userid.to_ascii_lowercase()
        )
    }

    /// Store key of the link from a `sub` to the member's current UserId.
    pub(super) fn sub_link_key(&self, subject: &str) -> String {
        format!("wecom:{}:sub:{subject}", self.settings.corp_id)
    }

    /// The `sub` for `userid`: the one recorded when this UserId replaced an older one
    /// (a `change_contact` rename, wecom-api.md §8, §11), else `userid` in the configured form.
    ///
    /// A UserId that was renamed away is retired: its old `sub` now belongs to the renamed
    /// member, so whoever is later given the same UserId gets a fresh `sub` (`userid.` + random),
    /// recorded on first use, instead of the renamed member's account at every client.
    /// A store failure fails the login: guessing could log the person into someone else's
    /// account at the client.
    pub(super) async fn subject_of(&self, userid: &str) -> Result<String, ConnectorError> {
        let key = self.id_link_key(userid);
        let unavailable =
            |e| ConnectorError::Unavailable(format!("cannot read the renamed-UserId links: {e}"));
        match self.store.find_user_link(&key).await {
            Ok(link) if link.starts_with(RETIRED_USERID) => {
                let suffix = &link[RETIRED_USERID.len()..];
                let fresh = format!("{}.{suffix}", self.default_subject(userid));
                self.store
                    .save_user_link(&key, &fresh)
                    .await
                    .map_err(unavailable)?;
                Ok(fresh)
            }
            Ok(subject) => Ok(subject),
            Err(crate::storage::StorageError::NotFound) => Ok(self.default_subject(userid)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The `sub` of a UserId never renamed: the UserId in the configured form, qualified by
    /// its corp unless that is the home corp ([`WeComSettings::home_corp_id`]). A linked
    /// member's `CorpId/userid` and a second corp's member are written alike, `CorpId/userid`,
    /// so the same person reached through a linked corp or through their own corp's app gets
    /// the same `sub`.
    pub(super) fn default_subject(&self, userid: &str) -> String {
        let (corp, bare) = match linked_userid(userid) {
            Some((corp, bare)) => (corp, bare),
            None => (self.settings.corp_id.as_str(), userid),
        };
        let home = self
            .settings
            .home_corp_id
            .as_deref()
            .unwrap_or(&self.settings.corp_id);
        let local = self.settings.subject.apply(bare);
        if corp.eq_ignore_ascii_case(home) {
            local
        } else {
            format!("{corp}/{local}")
        }
    }

    /// Records that the member `old` is now called `new` (a `change_contact` / `update_user`
    /// callback with `NewUserID`): `new` keeps the `sub` that `old` had, refreshes look the
    /// member up under `new`, and `old` is retired. Returns that `sub`. Recording the same
    /// rename twice (WeCom retries callbacks) changes nothing.
    pub async fn record_rename(&self, old: &str, new: &str) -> Result<String, ConnectorError> {
        let fail = |e: crate::storage::StorageError| {
            ConnectorError::Unavailable(format!("cannot record the UserId rename: {e}"))
        };
        if old.eq_ignore_ascii_case(new) {
            return self.subject_of(old).await;
        }
        if let Ok(subject) = self.store.find_user_link(&self.id_link_key(new)).await {
            if !subject.starts_with(RETIRED_USERID)
                && self
                    .store
                    .find_user_link(&self.id_link_key(old))
                    .await
                    .is_ok_and(|v| v.starts_with(RETIRED_USERID))
            {
                // Already recorded (a retried callback).
                return Ok(subject);
            }
        }
        let subject = self.subject_of(old).await?;
        self.store
            .save_user_link(&self.id_link_key(new), &subject)
            .await
            .map_err(fail)?;
        self.store
            .save_user_link(&self.sub_link_key(&subject), new)
            .await
            .map_err(fail)?;
        self.store
            .save_user_link(
                &self.id_link_key(old),
                &format!(
                    "{RETIRED_USERID}{}",
                    crate::random::alphanumeric(8).to_ascii_lowercase()
                ),
            )
            .await
            .map_err(fail)?;
        Ok(subject)
    }

    /// The member's current UserId for an identity we issued.
    pub(super) async fn current_userid(
        &self,
        identity: &Identity,
    ) -> Result<String, ConnectorError> {
        match self
            .store
            .find_user_link(&self.sub_link_key(&identity.user_id))
            .await
        {
            Ok(userid) => Ok(userid),
            Err(crate::storage::StorageError::NotFound) => Ok(identity
                .upstream_id
                .clone()
                .unwrap_or_else(|| identity.user_id.clone())),
            Err(e) => Err(ConnectorError::Unavailable(format!(
                "cannot read the renamed-UserId links: {e}"
            ))),
        }
    }
}
