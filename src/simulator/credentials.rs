//! The simulator's credentials and their checks: codes, user tickets and access tokens minted,
//! redeemed and verified under the state lock, with injected faults and API blocks.

use std::sync::MutexGuard;

use super::{
    expiry, redirect_domain, CodeError, CodeGrant, Simulator, State, Subject, TicketError,
    TicketGrant, TokenError, TokenGrant, USER_TICKET_TTL,
};
use crate::random;
use crate::simulator::corp::{App, AppKey};

impl Simulator {
    pub(super) fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The state lock. A panic elsewhere while holding it cannot leave the maps half-written
    /// in a way that matters to a simulator, so a poisoned lock is simply taken over.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The primary corp's first app.
    pub(super) fn primary_app(&self) -> AppKey {
        AppKey {
            corp_id: self.inner.config.corp_id.clone(),
            agent_id: self.inner.config.agent_id,
        }
    }

    pub(super) fn with_app(
        &self,
        corp_id: &str,
        agent_id: i64,
        change: impl FnOnce(&mut App),
    ) -> bool {
        let mut state = self.lock();
        match state.corp_mut(corp_id).and_then(|c| c.app_mut(agent_id)) {
            Some(app) => {
                change(app);
                true
            }
            None => false,
        }
    }

    pub(super) fn issue_external_code(
        &self,
        redirect_uri: &str,
        external_userid: Option<String>,
    ) -> String {
        let domain = url::Url::parse(redirect_uri)
            .ok()
            .and_then(|u| redirect_domain(&u));
        let openid = self.lock().primary().non_member_openid.clone();
        self.mint_code(
            self.primary_app(),
            Subject::NonMember {
                openid,
                external_userid,
            },
            false,
            domain,
            false,
        )
    }

    pub(super) fn mint_code(
        &self,
        app: AppKey,
        subject: Subject,
        private_info: bool,
        redirect_domain: Option<String>,
        in_app: bool,
    ) -> String {
        let now = self.now();
        let code = random::token(32);
        let device_id = if in_app {
            random::alphanumeric(32).to_ascii_lowercase()
        } else {
            String::new()
        };
        let grant = CodeGrant {
            app,
            subject,
            private_info,
            redirect_domain,
            device_id,
            expires_at: now + self.inner.config.code_ttl,
        };
        // Expired codes answer 40029 exactly like unknown ones, so they can go at once.
        let key = random::hash_secret(&code);
        let codes = &mut self.lock().codes;
        expiry::insert(codes, now, 0, expiry::MAX_CODES, key, grant, |g| {
            g.expires_at
        });
        code
    }

    /// Takes one pending fault for `path`, if any.
    pub(super) fn take_fault(&self, path: &str) -> Option<i64> {
        let mut state = self.lock();
        let fault = state.faults.get_mut(path)?;
        let errcode = fault.errcode;
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            state.faults.remove(path);
        }
        Some(errcode)
    }

    /// The `errcode` of a rate-limit block on `path` in force now, if any.
    pub(super) fn blocked(&self, path: &str) -> Option<i64> {
        let now = self.now();
        let mut state = self.lock();
        let block = *state.blocks.get(path)?;
        if now < block.until {
            Some(block.errcode)
        } else {
            state.blocks.remove(path);
            None
        }
    }

    /// Mints an access token of `app`, valid for `token_ttl` seconds.
    pub(super) fn mint_token(&self, app: AppKey) -> (String, i64) {
        let now = self.now();
        let ttl = self.inner.config.token_ttl;
        let token = random::token(48);
        let grant = TokenGrant {
            app,
            expires_at: now + ttl,
        };
        // Expired tokens stay one more lifetime so that their use answers 42001 rather than
        // 40014.
        let key = random::hash_secret(&token);
        let tokens = &mut self.lock().tokens;
        expiry::insert(tokens, now, ttl, expiry::MAX_TOKENS, key, grant, |t| {
            t.expires_at
        });
        (token, ttl)
    }

    /// Checks an `access_token` from the query string (§1: never from a header or body); the
    /// app it belongs to.
    pub(super) fn check_token(&self, token: Option<&str>) -> Result<AppKey, TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let now = self.now();
        match self.lock().tokens.get(&random::hash_secret(token)) {
            None => Err(TokenError::Unknown),
            Some(t) if t.expires_at <= now => Err(TokenError::Expired),
            Some(t) => Ok(t.app.clone()),
        }
    }

    /// Redeems a code of the primary app (tests of the pages).
    #[cfg(test)]
    pub(super) fn redeem_code(&self, code: &str) -> Result<CodeGrant, CodeError> {
        self.redeem_code_as(code, &self.primary_app())
    }

    /// Redeems a code once with a token of `app` (§2: single use, 5 minutes). A code issued by
    /// another app answers 50001 (§4: "usually the code came from another app"), as does one
    /// issued for a redirect domain `app` does not trust. The code is consumed even when a
    /// check fails, so a failed redemption cannot be retried with the same code.
    pub(super) fn redeem_code_as(&self, code: &str, app: &AppKey) -> Result<CodeGrant, CodeError> {
        let now = self.now();
        let mut state = self.lock();
        let grant = state
            .codes
            .remove(&random::hash_secret(code))
            .ok_or(CodeError::Invalid)?;
        if grant.expires_at <= now {
            return Err(CodeError::Invalid);
        }
        if grant.app != *app {
            return Err(CodeError::UntrustedDomain);
        }
        let (_, issuer) = state.app(app).ok_or(CodeError::Invalid)?;
        let trusted = match &grant.redirect_domain {
            Some(d) => issuer.is_trusted_domain(d),
            None => issuer.trusted_domains.is_empty(),
        };
        if !trusted {
            return Err(CodeError::UntrustedDomain);
        }
        Ok(grant)
    }

    /// Mints a `user_ticket` of `app` for `userid`, valid 1800 s (§4).
    pub(super) fn mint_ticket(&self, app: &AppKey, userid: &str) -> String {
        let now = self.now();
        let ticket = random::token(64);
        let grant = TicketGrant {
            app: app.clone(),
            userid: userid.to_string(),
            expires_at: now + USER_TICKET_TTL,
        };
        // Expired tickets stay one more lifetime so that their use answers 84014 rather than
        // 84015.
        let key = random::hash_secret(&ticket);
        let tickets = &mut self.lock().tickets;
        let (grace, cap) = (USER_TICKET_TTL, expiry::MAX_TICKETS);
        expiry::insert(tickets, now, grace, cap, key, grant, |t| t.expires_at);
        ticket
    }

    /// The userid behind a `user_ticket` presented with a token of `app`. Tickets stay usable
    /// until they expire.
    pub(super) fn ticket_user(&self, app: &AppKey, ticket: &str) -> Result<String, TicketError> {
        let now = self.now();
        let state = self.lock();
        let grant = state
            .tickets
            .get(&random::hash_secret(ticket))
            .filter(|t| t.app == *app)
            .ok_or(TicketError::Invalid)?;
        if grant.expires_at <= now {
            return Err(TicketError::Expired);
        }
        Ok(grant.userid.clone())
    }
}
