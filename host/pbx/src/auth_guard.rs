//! `AuthGuard`: throttles digest password guessing per source, sans-IO.
//!
//! Every failed authentication (a wrong password, an unknown user, someone else's address of
//! record, a replayed `Authorization`) is recorded against its source: an IPv4 address (also
//! when it arrives IPv4-mapped in IPv6), or the /64 network of an IPv6 address, since one
//! subscriber usually holds a whole /64 ([`source_key`]). Within one window a source's first
//! `max_failures / 2` failures are answered at once; later ones are answered after a delay
//! that grows with each failure; at `max_failures` the source is banned for the ban time: its
//! REGISTERs and INVITEs get 403 without touching the store. The admin lists bans (an IPv6
//! ban as its /64's network address) and lifts them by any address inside the source.
//!
//! Invariants: time is an argument (`now`), never read here; a phone at another source is
//! never slowed or banned by someone else's failures; memory is bounded ([`MAX_SOURCES`]
//! sources tracked): when the table is full, expired bans go first, then the non-banned
//! source whose last failure is oldest, so a new source is always tracked unless every slot
//! holds a live ban; every operation is O(log n); a success never clears failures (an
//! attacker with one valid account cannot reset its own count).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Most sources tracked at once; beyond it, expired bans and then the sources that failed
/// least recently are forgotten.
pub const MAX_SOURCES: usize = 65_536;
/// The first delay once a source is being slowed; each further failure adds one more.
const DELAY_STEP: Duration = Duration::from_millis(250);
/// The longest delay before a failure's answer.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// The source an address counts as, for the guard and for per-source limits elsewhere (SIP
/// TCP connections): an IPv4 address itself (IPv4-mapped IPv6 included), an IPv6 address's
/// /64 network address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// How strict the guard is.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// Failures from one source within `window` that ban it; 0 disables the guard.
    pub max_failures: u32,
    /// How long failures count.
    pub window: Duration,
    /// How long a ban lasts.
    pub ban: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_failures: 50,
            window: Duration::from_secs(300),
            ban: Duration::from_secs(900),
        }
    }
}

/// A banned source as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The source: an IPv4 address, or an IPv6 /64's network address.
    pub address: IpAddr,
    /// Why it was banned.
    pub reason: String,
    /// When the ban ends.
    pub until: Instant,
    /// Failures counted when it was banned.
    pub failures: u32,
    /// The last user name it tried.
    pub last_user: String,
}

/// What to do with one failed attempt's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Answer (401) after this delay (zero: at once).
    Delay(Duration),
    /// This failure banned the source (answer 403).
    Banned,
}

#[derive(Debug)]
struct Source {
    /// Failures within the window, and when the window started.
    failures: u32,
    window_start: Option<Instant>,
    /// When the last failure was recorded: its key in `AuthGuard::by_last_failure` while
    /// the source is not banned.
    last_failure: Instant,
    /// When its ban ends: its key in `AuthGuard::bans_by_end` while banned.
    banned_until: Option<Instant>,
    banned_failures: u32,
    last_user: String,
}

/// Failed-authentication bookkeeping per source.
#[derive(Debug)]
pub struct AuthGuard {
    config: GuardConfig,
    /// Most sources tracked ([`MAX_SOURCES`]).
    capacity: usize,
    sources: HashMap<IpAddr, Source>,
    /// Sources without a ban, by their last failure (the first is evicted when full).
    by_last_failure: BTreeSet<(Instant, IpAddr)>,
    /// Banned sources by the end of their ban (expired ones go first when full).
    bans_by_end: BTreeSet<(Instant, IpAddr)>,
}

impl AuthGuard {
    /// A guard with no history.
    pub fn new(config: GuardConfig) -> Self {
        Self::with_capacity(config, MAX_SOURCES)
    }

    /// A guard tracking at most `capacity` sources (at least 1).
    fn with_capacity(config: GuardConfig, capacity: usize) -> Self {
        AuthGuard {
            config,
            capacity: capacity.max(1),
            sources: HashMap::new(),
            by_last_failure: BTreeSet::new(),
            bans_by_end: BTreeSet::new(),
        }
    }

    /// Whether `ip`'s source is banned at `now` (its requests get 403 without a store lookup).
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources
            .get(&source_key(ip))
            .and_then(|s| s.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Records one failed authentication of `user` from `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, user: &str, now: Instant) -> FailureVerdict {
        if self.config.max_failures == 0 {
            return FailureVerdict::Delay(Duration::ZERO);
        }
        let key = source_key(ip);
        if !self.sources.contains_key(&key) && !self.make_room(now) {
            // Every slot holds a live ban: answer slowly without tracking.
            return FailureVerdict::Delay(MAX_DELAY);
        }
        let config = self.config;
        let source = self.sources.entry(key).or_insert_with(|| Source {
            failures: 0,
            window_start: None,
            last_failure: now,
            banned_until: None,
            banned_failures: 0,
            last_user: String::new(),
        });
        match source.banned_until {
            Some(until) if until > now => return FailureVerdict::Banned,
            Some(until) => {
                // The ban ended: the source counts afresh.
                self.bans_by_end.remove(&(until, key));
                source.banned_until = None;
            }
            None => {
                self.by_last_failure.remove(&(source.last_failure, key));
            }
        }
        source.last_failure = now;
        if source
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) > config.window)
        {
            source.window_start = Some(now);
            source.failures = 0;
        }
        source.failures = source.failures.saturating_add(1);
        source.last_user = user.chars().take(64).collect();
        if source.failures >= config.max_failures {
            let until = now + config.ban;
            source.banned_until = Some(until);
            source.banned_failures = source.failures;
            source.failures = 0;
            source.window_start = None;
            self.bans_by_end.insert((until, key));
            return FailureVerdict::Banned;
        }
        self.by_last_failure.insert((now, key));
        let free = config.max_failures / 2;
        let over = source.failures.saturating_sub(free);
        FailureVerdict::Delay(DELAY_STEP.saturating_mul(over).min(MAX_DELAY))
    }

    /// Makes room for one more source when the table is full: an expired ban goes, else the
    /// non-banned source that failed least recently. False when every slot holds a live ban.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.sources.len() < self.capacity {
            return true;
        }
        let victim = match self.bans_by_end.first() {
            Some(&(until, key)) if until <= now => self.bans_by_end.pop_first().map(|_| key),
            _ => self.by_last_failure.pop_first().map(|(_, key)| key),
        };
        match victim {
            Some(key) => {
                self.sources.remove(&key);
                true
            }
            None => false,
        }
    }

    /// The bans in force at `now`, soonest to end first.
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        self.bans_by_end
            .iter()
            .filter(|(until, _)| *until > now)
            .filter_map(|&(until, key)| {
                let s = self.sources.get(&key)?;
                Some(Ban {
                    address: key,
                    reason: "too many failed authentications".to_owned(),
                    until,
                    failures: s.banned_failures,
                    last_user: s.last_user.clone(),
                })
            })
            .collect()
    }

    /// Lifts the ban on `ip`'s source (any address inside an IPv6 /64) and forgets its
    /// failures; false when it was not banned.
    pub fn lift(&mut self, ip: IpAddr, now: Instant) -> bool {
        let banned = self.is_banned(ip, now);
        if banned {
            let key = source_key(ip);
            if let Some(s) = self.sources.remove(&key) {
                if let Some(until) = s.banned_until {
                    self.bans_by_end.remove(&(until, key));
                }
                self.by_last_failure.remove(&(s.last_failure, key));
            }
        }
        banned
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn failures_are_delayed_then_banned_per_source() {
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 6,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        });
        let t0 = Instant::now();
        let verdicts: Vec<FailureVerdict> = (0..6)
            .map(|i| g.record_failure(ip(1), "alice", t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(verdicts[0], FailureVerdict::Delay(Duration::ZERO));
        assert_eq!(verdicts[2], FailureVerdict::Delay(Duration::ZERO));
        assert_eq!(verdicts[3], FailureVerdict::Delay(DELAY_STEP));
        assert_eq!(verdicts[4], FailureVerdict::Delay(DELAY_STEP * 2));
        assert_eq!(verdicts[5], FailureVerdict::Banned);
        let t = t0 + Duration::from_secs(10);
        assert!(g.is_banned(ip(1), t));
        assert!(!g.is_banned(ip(2), t), "another address is not affected");
        let bans = g.bans(t);
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].failures, bans[0].last_user.as_str()), (6, "alice"));
        assert!(
            !g.is_banned(ip(1), t0 + Duration::from_secs(606)),
            "bans end"
        );
    }

    #[test]
    fn old_failures_leave_the_window_and_bans_can_be_lifted() {
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        });
        let t0 = Instant::now();
        g.record_failure(ip(1), "a", t0);
        g.record_failure(ip(1), "a", t0 + Duration::from_secs(1));
        // The window has passed: counting starts again.
        let v = g.record_failure(ip(1), "a", t0 + Duration::from_secs(120));
        assert_ne!(v, FailureVerdict::Banned);
        g.record_failure(ip(1), "a", t0 + Duration::from_secs(121));
        let t = t0 + Duration::from_secs(122);
        assert_eq!(g.record_failure(ip(1), "a", t), FailureVerdict::Banned);
        assert!(g.lift(ip(1), t));
        assert!(!g.is_banned(ip(1), t));
        assert!(!g.lift(ip(1), t), "nothing left to lift");
    }

    #[test]
    fn zero_max_failures_disables_the_guard() {
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 0,
            ..GuardConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                g.record_failure(ip(1), "a", t0),
                FailureVerdict::Delay(Duration::ZERO)
            );
        }
        assert!(!g.is_banned(ip(1), t0));
    }

    fn strict() -> GuardConfig {
        GuardConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        }
    }

    #[test]
    fn ipv6_sources_are_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), ip(7));
        assert_eq!(source_key(ip(7)), ip(7));

        let mut g = AuthGuard::new(strict());
        let t0 = Instant::now();
        // Three addresses of one /64 share one count.
        g.record_failure(a, "u", t0);
        let host = |n: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, n));
        g.record_failure(host(9), "u", t0);
        assert_eq!(g.record_failure(b, "u", t0), FailureVerdict::Banned);
        assert!(g.is_banned(host(1234), t0));
        assert!(!g.is_banned(other, t0), "the next /64 is someone else");
        let bans = g.bans(t0);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].address.to_string(), "2001:db8:1:2::");
        // Lifted by any address inside it.
        assert!(g.lift(host(77), t0));
        assert!(!g.is_banned(a, t0));
        assert!(g.bans(t0).is_empty());
        // IPv4-mapped failures count against the IPv4 address.
        g.record_failure(mapped, "u", t0);
        g.record_failure(ip(7), "u", t0);
        assert_eq!(g.record_failure(mapped, "u", t0), FailureVerdict::Banned);
        assert!(g.is_banned(ip(7), t0));
        assert_eq!(g.bans(t0)[0].address, ip(7));
        assert!(g.lift(mapped, t0));
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_failed_source_but_keeps_bans() {
        let mut g = AuthGuard::with_capacity(strict(), 4);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // 1 is banned; 2, 3, 4 failed once each, 2 longest ago.
        for _ in 0..3 {
            g.record_failure(ip(1), "u", at(0));
        }
        assert!(g.is_banned(ip(1), at(1)));
        g.record_failure(ip(2), "u", at(1));
        g.record_failure(ip(3), "u", at(2));
        g.record_failure(ip(4), "u", at(3));
        // 2 fails again: now 3 is the least recent.
        g.record_failure(ip(2), "u", at(4));
        // Full of recent sources: a new one is tracked, 3 is forgotten, the ban stays.
        g.record_failure(ip(5), "u", at(5));
        assert_eq!(g.sources.len(), 4);
        assert!(g.sources.contains_key(&ip(5)));
        assert!(!g.sources.contains_key(&ip(3)));
        assert!(g.sources.contains_key(&ip(2)));
        assert!(g.is_banned(ip(1), at(5)));
        // The new source is really counted: two more failures ban it.
        g.record_failure(ip(5), "u", at(6));
        assert_eq!(g.record_failure(ip(5), "u", at(7)), FailureVerdict::Banned);
        // Ever more sources never push out a live ban.
        for n in 10..200 {
            assert_ne!(g.record_failure(ip(n), "u", at(8)), FailureVerdict::Banned);
        }
        assert_eq!(g.sources.len(), 4);
        assert!(g.is_banned(ip(1), at(8)) && g.is_banned(ip(5), at(8)));
        // Once the bans have ended, they make room first.
        g.record_failure(ip(250), "u", at(700));
        assert!(!g.sources.contains_key(&ip(1)));
        assert!(g.sources.contains_key(&ip(199)));
        assert_eq!(
            g.bans_by_end.len() + g.by_last_failure.len(),
            g.sources.len()
        );
    }

    #[test]
    fn a_table_full_of_live_bans_answers_slowly_without_tracking() {
        let mut g = AuthGuard::with_capacity(strict(), 2);
        let t0 = Instant::now();
        for n in 1..=2 {
            for _ in 0..3 {
                g.record_failure(ip(n), "u", t0);
            }
        }
        assert_eq!(
            g.record_failure(ip(3), "u", t0),
            FailureVerdict::Delay(MAX_DELAY)
        );
        assert_eq!(g.sources.len(), 2);
        assert!(g.is_banned(ip(1), t0) && g.is_banned(ip(2), t0));
    }
}
