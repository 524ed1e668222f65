//! How tests and the demo steer the simulator: issue login codes, change members, corps, apps
//! and visible ranges, link corps, inject faults, blocks and quirks.

use super::{
    directory, new_corp, normalize_path, redirect_domain, AppSpec, Block, CorpSeed, Fault,
    Simulator, SimulatorQuirks, Subject, VisibleRange,
};
use crate::random;
use crate::simulator::corp::{App, AppKey, Link};

impl Simulator {
    /// Mints a code of the primary app as if member `userid` had logged in through a page with
    /// `scope` (`snsapi_privateinfo` earns a `user_ticket`; anything else, e.g. `snsapi_base` or
    /// `""` for a web login, does not) and been sent to `redirect_uri`. The redirect domain is
    /// *not* checked here: redeeming a code issued for an untrusted domain answers 50001. An
    /// unknown userid is kept as given, so a client's handling of a vanished member can be
    /// tested.
    pub fn issue_code(&self, userid: &str, scope: &str, redirect_uri: &str) -> String {
        let c = &self.inner.config;
        self.issue_code_for(&c.corp_id, c.agent_id, userid, scope, redirect_uri)
    }

    /// Like [`Simulator::issue_code`], for a member of any corp through its app `agent_id`.
    /// `userid` may be a linked member, `LINKEDCORPID/userid` (§4, §12): its code answers that
    /// form and never earns a `user_ticket`. The code is bound to `(corp_id, agent_id)`: only a
    /// token of that app redeems it (another app's gets 50001). For an unknown corp or app the
    /// answer is a code that was never issued (40029).
    pub fn issue_code_for(
        &self,
        corp_id: &str,
        agent_id: i64,
        userid: &str,
        scope: &str,
        redirect_uri: &str,
    ) -> String {
        let app = AppKey {
            corp_id: corp_id.to_string(),
            agent_id,
        };
        let subject = {
            let state = self.lock();
            if state.app(&app).is_none() {
                return random::token(32);
            }
            match userid.split_once('/') {
                Some((linked, id)) => Subject::Linked {
                    corp_id: linked.to_string(),
                    userid: state
                        .corp(linked)
                        .and_then(|c| c.directory.member(id))
                        .map(|m| m.userid.clone())
                        .unwrap_or_else(|| id.to_string()),
                },
                None => Subject::Member(
                    state
                        .corp(corp_id)
                        .and_then(|c| c.directory.member(userid))
                        .map(|m| m.userid.clone())
                        .unwrap_or_else(|| userid.to_string()),
                ),
            }
        };
        let domain = url::Url::parse(redirect_uri)
            .ok()
            .and_then(|u| redirect_domain(&u));
        let in_app = !scope.is_empty();
        self.mint_code(app, subject, scope == "snsapi_privateinfo", domain, in_app)
    }

    /// Mints a code of the primary app for a WeChat user who is not a member: `getuserinfo`
    /// answers `openid` (§4), nothing else.
    pub fn issue_non_member_code(&self, redirect_uri: &str) -> String {
        self.issue_external_code(redirect_uri, None)
    }

    /// Mints a non-member code whose `getuserinfo` answer also carries `external_userid`, as
    /// for a customer of a member (§4). Additive to the agreed API.
    pub fn issue_external_contact_code(&self, redirect_uri: &str, external_userid: &str) -> String {
        self.issue_external_code(redirect_uri, Some(external_userid.to_string()))
    }

    /// Revokes every access token of every app early, as WeCom may (§1): the next use gets
    /// 40014.
    pub fn revoke_all_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Sets a member's `status` (1 active, 2 disabled, 4 not activated, 5 left) in the primary
    /// corp. Returns `false`, changing nothing, when the member does not exist or `status` is
    /// not one of those values.
    pub fn set_member_status(&self, userid: &str, status: i64) -> bool {
        let corp_id = self.inner.config.corp_id.clone();
        self.set_member_status_in(&corp_id, userid, status)
    }

    /// Like [`Simulator::set_member_status`] for any corp (a linked corp's member too: name
    /// the linked corp).
    pub fn set_member_status_in(&self, corp_id: &str, userid: &str, status: i64) -> bool {
        if !directory::is_known_status(status) {
            return false;
        }
        let mut state = self.lock();
        match state
            .corp_mut(corp_id)
            .and_then(|c| c.directory.member_mut(userid))
        {
            Some(member) => {
                member.status = status;
                true
            }
            None => false,
        }
    }

    /// Adds a corp with its first app. A `corp_id` already simulated keeps its directory and
    /// links; `app` is then added to it as [`Simulator::add_app`] would (ignored when its
    /// agent_id is taken).
    pub fn add_corp(&self, corp_id: &str, seed: CorpSeed, app: AppSpec) {
        if self.lock().corp(corp_id).is_some() {
            self.add_app(corp_id, app);
            return;
        }
        // Generating a large directory takes a moment: do it outside the lock.
        let directory = seed.directory();
        let mut state = self.lock();
        if state.corp(corp_id).is_none() {
            state
                .corps
                .push(new_corp(corp_id, directory, App::from_spec(app)));
        }
    }

    /// Adds another app to an existing corp (primary corp included). `false` if the corp is
    /// unknown or the agent_id taken.
    pub fn add_app(&self, corp_id: &str, app: AppSpec) -> bool {
        let mut state = self.lock();
        match state.corp_mut(corp_id) {
            Some(corp) if corp.app(app.agent_id).is_none() => {
                corp.apps.push(App::from_spec(app));
                true
            }
            _ => false,
        }
    }

    /// Replaces an app's visible range (§12). `false` if the corp or app is unknown. Tokens
    /// already issued see the new range at once, as WeCom applies range changes to live apps.
    pub fn set_visible_range(&self, corp_id: &str, agent_id: i64, range: VisibleRange) -> bool {
        self.with_app(corp_id, agent_id, |app| app.range = range)
    }

    /// Makes `linked_corp_id` (also added with [`Simulator::add_corp`], any seed) a linked corp
    /// (互联企业/上下游) of `corp_id`: members of `linked_corp_id` in `departments` (recursive;
    /// empty = all) can log in to `corp_id`'s apps, arriving as `LINKEDCORPID/userid` (§4,
    /// §12), and `corp_id`'s apps read them with `linkedcorp/user/get`. Linking again replaces
    /// the departments. `false` if either corp is unknown or both are the same.
    pub fn link_corp(&self, corp_id: &str, linked_corp_id: &str, departments: Vec<i64>) -> bool {
        let mut state = self.lock();
        if corp_id == linked_corp_id || state.corp(linked_corp_id).is_none() {
            return false;
        }
        let Some(corp) = state.corp_mut(corp_id) else {
            return false;
        };
        corp.links.retain(|l| l.corp_id != linked_corp_id);
        corp.links.push(Link {
            corp_id: linked_corp_id.to_string(),
            departments,
        });
        true
    }

    /// `trusted == false`: `gettoken` still succeeds for this app, but every token-protected
    /// API answers 60020 "not allow to access from your ip" (§1: trusted IP is checked on the
    /// data APIs, not reliably on `gettoken`). Default `true`. `false` if the app is unknown.
    pub fn set_ip_trusted(&self, corp_id: &str, agent_id: i64, trusted: bool) -> bool {
        self.with_app(corp_id, agent_id, |app| app.ip_trusted = trusted)
    }

    /// Fault injection: the next `times` calls to the JSON endpoint `path` (e.g.
    /// `"/cgi-bin/gettoken"`, leading slash optional) answer `errcode` (-1 system busy, 45009
    /// rate limit, …) before any other check, with the endpoint's usual error body. `times == 0`
    /// or `errcode == 0` cancels a pending fault. The login pages ignore faults.
    pub fn fail_next(&self, path: &str, errcode: i64, times: u32) {
        let key = normalize_path(path);
        let mut state = self.lock();
        if times == 0 || errcode == 0 {
            state.faults.remove(&key);
        } else {
            state.faults.insert(
                key,
                Fault {
                    errcode,
                    remaining: times,
                },
            );
        }
    }

    /// Rate-limit block (§1 limits): every call to the JSON endpoint `path` answers `errcode`
    /// (45009 "api freq out of limit", 45033 concurrency, …) until the simulator's clock has
    /// moved `duration` past now (rounded up to whole seconds) — WeCom's minute-level block is
    /// 60 s, the hour-level one 60 min. Checked after injected faults and before the token.
    /// Calls made during the block do not extend it. `Duration::ZERO` or `errcode == 0` lifts
    /// it. Applies to every corp and app, like a per-IP block.
    pub fn block_api(&self, path: &str, errcode: i64, duration: std::time::Duration) {
        let key = normalize_path(path);
        let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
        let until = self
            .now()
            .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
        let mut state = self.lock();
        if secs == 0 || errcode == 0 {
            state.blocks.remove(&key);
        } else {
            state.blocks.insert(key, Block { errcode, until });
        }
    }

    /// Switches behaviours the reference leaves unconfirmed (see [`SimulatorQuirks`]).
    /// Additive to the agreed API.
    pub fn set_quirks(&self, quirks: SimulatorQuirks) {
        self.lock().quirks = quirks;
    }

    /// The quirks in force.
    pub fn quirks(&self) -> SimulatorQuirks {
        self.lock().quirks
    }

    // ---- internals shared by the API handlers and the pages ----
}
