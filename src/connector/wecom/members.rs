//! What a WeCom callback about a member means for their logins (wecom-api.md §11): a rename is
//! recorded so the member keeps their `sub`; a member deleted, disabled or taken out of the
//! app's visible range is reported as a [`Departure`], which the core turns into a sign-out
//! everywhere.

use super::callback::ContactEvent;
use super::{status_words, WeComConnector, STATUS_ACTIVE};
use crate::connector::{ConnectorError, Departure};

impl WeComConnector {
    /// Acts on one decrypted event; the people it removed.
    ///
    /// An `update_user` without `Status` or rename (callback URLs set after 2022-08-15 get only
    /// UserID, Department and NewUserID, §11) and an `unsubscribe` (which WeCom also sends when a
    /// member unfollows the app) do not say whether the member may still log in, so the member
    /// is read again (`user/get`) and reported only when WeCom refuses them: a department
    /// move may have taken them out of the visible range, and an unfollow alone changes nothing.
    pub(super) async fn on_member_event(
        &self,
        event: ContactEvent,
    ) -> Result<Vec<Departure>, ConnectorError> {
        match event {
            ContactEvent::Updated {
                userid,
                new_userid,
                status,
            } => {
                let renamed = new_userid.is_some();
                let current = match new_userid {
                    Some(new) => {
                        self.record_rename(&userid, &new).await?;
                        tracing::info!(old = %userid, new = %new, "WeCom UserId rename recorded");
                        new
                    }
                    None => userid,
                };
                match status {
                    Some(STATUS_ACTIVE) => Ok(Vec::new()),
                    Some(status) => Ok(vec![
                        self.departure(
                            &current,
                            true,
                            format!("WeCom reports the member {}", status_words(status)),
                        )
                        .await?,
                    ]),
                    // A rename says who the member is now, not whether they may log in; reading
                    // the new id at once could race WeCom's own propagation of the rename and
                    // sign out someone who only changed their id.
                    None if renamed => Ok(Vec::new()),
                    None => self.reread(&current).await,
                }
            }
            ContactEvent::Deleted { userid } => Ok(vec![
                self.departure(
                    &userid,
                    true,
                    "WeCom reports the member deleted from the corp".to_owned(),
                )
                .await?,
            ]),
            ContactEvent::Unsubscribed { userid } => self.reread(&userid).await,
            ContactEvent::Other => Ok(Vec::new()),
        }
    }

    /// Reads the member again: a departure when WeCom refuses them (gone from the corp or
    /// disabled: the whole corp; outside this app's visible range: this app), nothing when
    /// they may still log in. An unreachable WeCom fails the event, so WeCom retries it.
    async fn reread(&self, userid: &str) -> Result<Vec<Departure>, ConnectorError> {
        match self.read_member(userid, None, false).await {
            Ok(_) => Ok(Vec::new()),
            Err(ConnectorError::AccessDenied(why)) => {
                Ok(vec![self.departure(userid, true, why).await?])
            }
            Err(ConnectorError::NotPermitted(why)) => {
                Ok(vec![self.departure(userid, false, why).await?])
            }
            Err(e) => Err(e),
        }
    }

    /// The departure of the member `userid`, named by their `sub`.
    async fn departure(
        &self,
        userid: &str,
        whole_realm: bool,
        reason: String,
    ) -> Result<Departure, ConnectorError> {
        Ok(Departure {
            user_id: self.subject_of(userid).await?,
            whole_realm,
            reason,
        })
    }
}
