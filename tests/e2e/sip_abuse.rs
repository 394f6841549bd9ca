//! Issue 9, hardening, tried the way an attacker would against the real binary on loopback:
//! a replayed REGISTER, a user name forging a log field, password guessing (slowed, then
//! banned; the ban listed and lifted over the API; a phone at another address unaffected),
//! too many TCP connections from one source, idle TCP connections (closed, unless they carry
//! a registration), and the open-file limit raised at start-up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_tests::digest::{authorization, md5_challenge, register_request};
use pbx_tests::party::USER_PASSWORD;
use pbx_tests::sip_raw::SipResponse;
use pbx_tests::{Pbx, expect_status, list_of, str_field};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Sends `request` (retransmitting like Timer E) and returns the first final response whose
/// CSeq matches, or `None` when none came within `timeout`.
async fn exchange(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &str,
    timeout: Duration,
) -> Option<SipResponse> {
    pbx_tests::digest::exchange(socket, target, request, timeout)
        .await
        .ok()
}

/// A UDP socket on `ip` (any port); 127.0.0.2 is a second address on loopback.
async fn phone(ip: [u8; 4]) -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let local = socket.local_addr().unwrap();
    (socket, local)
}

/// One full registration from `ip` with `password`: the challenge, then the verdict (or the
/// first answer when it is not a challenge, such as 403 to a banned source).
async fn register_from(pbx: &Pbx, ip: [u8; 4], user: &str, password: &str) -> (u16, SocketAddr) {
    let (socket, local) = phone(ip).await;
    let target = pbx.sip_addr();
    let call_id = format!("abuse-{:08x}", rand::random::<u32>());
    let first = register_request(local, target, user, &call_id, 1, None);
    let challenge = exchange(&socket, target, &first, Duration::from_secs(5))
        .await
        .expect("a challenge");
    if challenge.status != 401 {
        return (challenge.status, local);
    }
    let challenge = md5_challenge(&challenge).unwrap();
    let auth = authorization(
        &challenge,
        "REGISTER",
        &format!("sip:{target}"),
        user,
        password,
        "c0ffee",
    );
    let second = register_request(local, target, user, &call_id, 2, Some(&auth));
    let verdict = exchange(&socket, target, &second, Duration::from_secs(10))
        .await
        .expect("a verdict");
    (verdict.status, local)
}

async fn create_alice(pbx: &Pbx) -> String {
    let user = expect_status(
        "create alice",
        201,
        pbx.api()
            .create_sip_user("alice", USER_PASSWORD)
            .await
            .unwrap(),
    )
    .unwrap();
    str_field(&user, "id").to_owned()
}

/// A captured `Authorization` replayed from another port with another Contact, and from
/// another address: both get 401 with a fresh challenge, and the API lists only the real
/// phone's contact.
#[tokio::test]
async fn a_replayed_register_gets_a_fresh_challenge() {
    let pbx = Pbx::start().await.unwrap();
    let id = create_alice(&pbx).await;
    let target = pbx.sip_addr();
    let (socket, local) = phone([127, 0, 0, 1]).await;
    let first = register_request(local, target, "alice", "real-1", 1, None);
    let challenge = exchange(&socket, target, &first, Duration::from_secs(5))
        .await
        .unwrap();
    let challenge = md5_challenge(&challenge).unwrap();
    let auth = authorization(
        &challenge,
        "REGISTER",
        &format!("sip:{target}"),
        "alice",
        USER_PASSWORD,
        "c0ffee",
    );
    let real = register_request(local, target, "alice", "real-1", 2, Some(&auth));
    let ok = exchange(&socket, target, &real, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.raw);

    for ip in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        let (evil, evil_addr) = phone(ip).await;
        let replay = register_request(evil_addr, target, "alice", "evil-1", 2, Some(&auth));
        let answer = exchange(&evil, target, &replay, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            answer.status, 401,
            "replay from {evil_addr}: {}",
            answer.raw
        );
        let fresh = md5_challenge(&answer).unwrap();
        assert_ne!(fresh.get("nonce"), challenge.get("nonce"), "a fresh nonce");
        let user = expect_status(
            "GET alice",
            200,
            pbx.api().get(&format!("/v1/sip-users/{id}")).await.unwrap(),
        )
        .unwrap();
        let registrations = list_of(&user, "registrations");
        assert_eq!(registrations.len(), 1, "{user}");
        assert!(
            str_field(&registrations[0], "contact").contains(&local.to_string()),
            "{user}"
        );
        assert!(!user.to_string().contains(&evil_addr.to_string()), "{user}");
    }

    // A user name that imitates a field is logged quoted, after the real `source`.
    let forged = authorization(
        &challenge,
        "REGISTER",
        &format!("sip:{target}"),
        "mallory source=10.9.9.9",
        "guess",
        "c0ffee",
    );
    let request = register_request(local, target, "alice", "forged-1", 3, Some(&forged));
    let answer = exchange(&socket, target, &request, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.raw);
    let log = pbx.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("SIP authentication failed") && l.contains("mallory"))
        .unwrap_or_else(|| panic!("no failure line:\n{}", pbx.log_tail(40)));
    assert!(
        line.contains(" source=127.0.0.1:") && line.contains(r#" user="mallory source=10.9.9.9""#),
        "{line}"
    );
    assert!(
        line.find("source=127.0.0.1:") < line.find("source=10.9.9.9"),
        "the real source comes first: {line}"
    );
}

/// 30 wrong passwords from one address: the first are answered at once, later ones late,
/// then 403 (banned), also for INVITE; the ban is logged, counted, published, listed and
/// lifted over the API; the right password from 127.0.0.2 registers during the ban.
#[tokio::test]
async fn password_guessing_is_slowed_then_banned_and_lifted() {
    let pbx = crate::common::pbx_with_args(
        &["--sip-auth-max-failures", "10", "--sip-ban-secs", "600"],
        &[],
    )
    .await
    .0;
    create_alice(&pbx).await;
    let target = pbx.sip_addr();
    let (socket, local) = phone([127, 0, 0, 1]).await;
    let first = register_request(local, target, "alice", "guess", 1, None);
    let challenge = exchange(&socket, target, &first, Duration::from_secs(5))
        .await
        .unwrap();
    let challenge = md5_challenge(&challenge).unwrap();
    let mut answers = Vec::new();
    for i in 0..30u32 {
        let auth = authorization(
            &challenge,
            "REGISTER",
            &format!("sip:{target}"),
            "alice",
            &format!("guess-{i}"),
            "c0ffee",
        );
        let guess = register_request(local, target, "alice", "guess", i + 2, Some(&auth));
        let started = Instant::now();
        let answer = exchange(&socket, target, &guess, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no answer to guess {i}"));
        answers.push((answer.status, started.elapsed()));
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(&statuses[..9], &[401; 9], "{answers:?}");
    assert_eq!(&statuses[9..], &[403; 21], "{answers:?}");
    // Guesses 6 to 9 wait 250 ms more each.
    for (i, (_, took)) in answers.iter().enumerate().take(9).skip(5) {
        let least = Duration::from_millis(250 * (i as u64 - 4));
        assert!(*took >= least, "guess {i} took {took:?}: {answers:?}");
    }

    // INVITE from the banned address: 403 before any routing.
    let invite = format!(
        "INVITE sip:1000@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-banned-inv;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:x@{local}>;tag=banned\r\n\
         To: <sip:1000@{target}>\r\n\
         Call-ID: banned-invite\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:x@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let answer = exchange(&socket, target, &invite, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 403, "{}", answer.raw);

    // The phone at another address is not affected.
    let (status, _) = register_from(&pbx, [127, 0, 0, 2], "alice", USER_PASSWORD).await;
    assert_eq!(status, 200);
    // The banned address is refused even with the right password.
    let (status, _) = register_from(&pbx, [127, 0, 0, 1], "alice", USER_PASSWORD).await;
    assert_eq!(status, 403);

    let api = pbx.api();
    let bans = expect_status("GET bans", 200, api.get("/v1/sip-bans").await.unwrap()).unwrap();
    let list = list_of(&bans, "sip_bans");
    assert_eq!(list.len(), 1, "{bans}");
    assert_eq!(str_field(&list[0], "address"), "127.0.0.1", "{bans}");
    assert_eq!(list[0]["failures"], 10, "{bans}");
    assert_eq!(str_field(&list[0], "last_user"), "alice", "{bans}");
    assert!(!str_field(&list[0], "until").is_empty(), "{bans}");

    // One line per failure with `source` and the quoted user as separate fields, for
    // fail2ban-style scanners.
    let log = pbx.log_text();
    assert!(
        log.lines().any(|l| l.contains("SIP authentication failed")
            && l.contains(" source=127.0.0.1:")
            && l.contains(" user=\"alice\"")),
        "the failure log names the source and the user:\n{}",
        pbx.log_tail(40)
    );
    let (_, metrics) = api.get_text_unauthenticated("/metrics").await.unwrap();
    assert!(
        metrics.contains("pbx_sip_auth_failures_total{reason=\"bad_credentials\"} 10"),
        "{metrics}"
    );
    assert!(metrics.contains("pbx_sip_bans_total 1"), "{metrics}");
    assert!(metrics.contains("pbx_sip_active_bans 1"), "{metrics}");
    let mut events = Vec::new();
    for _ in 0..50 {
        let (_, body) = api.get("/v1/events?types=SIP_AUTH_FAILED").await.unwrap();
        events = list_of(&body, "events");
        if events.len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 10, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains("\"banned\":true"))
    );

    let (status, _) = api.delete("/v1/sip-bans/127.0.0.1").await.unwrap();
    assert_eq!(status, 204);
    let bans = expect_status("GET bans", 200, api.get("/v1/sip-bans").await.unwrap()).unwrap();
    assert!(list_of(&bans, "sip_bans").is_empty(), "{bans}");
    let (status, _) = api.delete("/v1/sip-bans/127.0.0.1").await.unwrap();
    assert_eq!(status, 404);
    let (status, _) = api.delete("/v1/sip-bans/not-an-ip").await.unwrap();
    assert_eq!(status, 400);
    let (status, _) = register_from(&pbx, [127, 0, 0, 1], "alice", USER_PASSWORD).await;
    assert_eq!(status, 200, "lifted: the address registers again");
}

/// Whether the server closed `stream` within `wait` (EOF or reset).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// OPTIONS over an open connection gets 200.
async fn options_over(stream: &mut TcpStream, target: SocketAddr) -> bool {
    let local = stream.local_addr().unwrap();
    let req =
        pbx_tests::sip_raw::options_request(local, target, pbx_tests::sip_raw::RawTransport::Tcp);
    if stream.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 8192];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"),
        _ => false,
    }
}

/// Ten connections from one address with a cap of four: six are closed at once, four work,
/// another address still connects, and the HTTP API answers. The fd limit raise is logged.
#[tokio::test]
async fn tcp_connections_are_capped_per_source() {
    let pbx = crate::common::pbx_with_args(&["--sip-tcp-max-per-source", "4"], &[])
        .await
        .0;
    let target = pbx.sip_addr();
    let mut conns = Vec::new();
    for _ in 0..10 {
        conns.push(TcpStream::connect(target).await.unwrap());
    }
    let mut open = Vec::new();
    let mut closed = 0;
    for mut c in conns {
        if closed_within(&mut c, Duration::from_millis(1500)).await {
            closed += 1;
        } else {
            open.push(c);
        }
    }
    assert_eq!((open.len(), closed), (4, 6));
    for c in &mut open {
        assert!(
            options_over(c, target).await,
            "an accepted connection works"
        );
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
    let mut other = socket.connect(target).await.unwrap();
    assert!(
        options_over(&mut other, target).await,
        "another address is not capped"
    );
    let health = pbx.api().healthz().await.unwrap();
    assert_eq!(health.0, 200, "the HTTP API answers at the cap");
    assert!(
        pbx.log_text().contains("open-file limit"),
        "the fd limit is logged at start:\n{}",
        pbx.log_tail(40)
    );
}

/// A connection that carries nothing for the idle time is closed; one message resets it.
#[tokio::test]
async fn idle_tcp_connections_are_closed() {
    let pbx = crate::common::pbx_with_args(&["--sip-tcp-idle-secs", "1"], &[])
        .await
        .0;
    let target = pbx.sip_addr();
    let mut silent = TcpStream::connect(target).await.unwrap();
    let mut talking = TcpStream::connect(target).await.unwrap();
    assert!(options_over(&mut talking, target).await);
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the idle time"
    );
    assert!(closed_within(&mut talking, Duration::from_secs(10)).await);
    assert_eq!(pbx.api().healthz().await.unwrap().0, 200);
}

/// Sends `request` over `stream` and reads one response (a whole head; these carry no body).
async fn tcp_exchange(stream: &mut TcpStream, request: &str) -> SipResponse {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    while !text.contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "closed while waiting for a response: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    SipResponse::parse(&text).unwrap()
}

/// Registers (or, with `expires` 0, unregisters) alice over `stream`: the challenge, then
/// the answer; returns the final status.
async fn tcp_register(stream: &mut TcpStream, target: SocketAddr, expires: u32, cseq: u32) -> u16 {
    let local = stream.local_addr().unwrap();
    let request = |cseq: u32, auth: Option<&str>| {
        register_request(local, target, "alice", "tcp-reg-1", cseq, auth)
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
            .replace(
                ">;expires=60",
                &format!(";transport=tcp>;expires={expires}"),
            )
    };
    let challenge = tcp_exchange(stream, &request(cseq, None)).await;
    assert_eq!(challenge.status, 401, "{}", challenge.raw);
    let challenge = md5_challenge(&challenge).unwrap();
    let auth = authorization(
        &challenge,
        "REGISTER",
        &format!("sip:{target}"),
        "alice",
        USER_PASSWORD,
        "c0ffee",
    );
    tcp_exchange(stream, &request(cseq + 1, Some(&auth)))
        .await
        .status
}

/// A phone behind NAT registered over TCP gets its calls over that connection, so it stays
/// open past the idle time while the binding lives; a connection that never registered is
/// closed; once unregistered, the phone's connection is idle like any other.
#[tokio::test]
async fn a_tcp_connection_carrying_a_registration_is_kept() {
    let pbx = crate::common::pbx_with_args(&["--sip-tcp-idle-secs", "1"], &[])
        .await
        .0;
    let id = create_alice(&pbx).await;
    let target = pbx.sip_addr();
    let mut phone = TcpStream::connect(target).await.unwrap();
    let mut silent = TcpStream::connect(target).await.unwrap();
    assert_eq!(tcp_register(&mut phone, target, 60, 1).await, 200);
    let user = expect_status(
        "GET alice",
        200,
        pbx.api().get(&format!("/v1/sip-users/{id}")).await.unwrap(),
    )
    .unwrap();
    assert_eq!(list_of(&user, "registrations").len(), 1, "{user}");
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(
        !closed_within(&mut phone, Duration::from_secs(4)).await,
        "the registered connection stays open past four idle times"
    );
    assert!(options_over(&mut phone, target).await, "and it still works");
    assert_eq!(tcp_register(&mut phone, target, 0, 3).await, 200);
    assert!(
        closed_within(&mut phone, Duration::from_secs(10)).await,
        "unregistered: idle again"
    );
}
