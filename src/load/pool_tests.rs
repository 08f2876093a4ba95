//! The pool's own tests: source addresses, spreading, fan-out lines.

use super::*;

#[test]
fn spreads_connections_over_the_source_addresses() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut pool = Pool::new(listener.local_addr().expect("addr"), 3).expect("pool");
    for _ in 0..6 {
        pool.connect().expect("connect");
    }
    let mut peers: Vec<_> = (0..6)
        .map(|_| listener.accept().expect("accept").1.ip().to_string())
        .collect();
    peers.sort();
    let expected = [
        "127.0.0.1",
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.3",
    ];
    assert_eq!(peers, expected);
}

#[test]
fn spreads_connections_over_several_servers_from_a_number_on() {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect();
    let mut pool = Pool::new(addrs[0], 2).expect("pool");
    pool.spread_over(2, addrs.clone())
        .expect("loopback servers");
    for _ in 0..8 {
        pool.connect().expect("connect");
    }
    // 0 and 1 on the first server; 2..8 round robin from the first.
    for (listener, expected) in listeners.iter().zip([4, 2, 2]) {
        listener.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut got = 0;
        while got < expected && Instant::now() < deadline {
            match listener.accept() {
                Ok(_) => got += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(got, expected);
        assert!(listener.accept().is_err(), "more than {expected}");
    }
    let off = "192.0.2.1:7373".parse().unwrap();
    let err = pool.spread_over(2, vec![off]).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn reads_fan_out_lines() {
    assert_eq!(Fan::parse(b"MSG 0000000042 xxxx"), Some(Fan::Msg(Some(42))));
    assert_eq!(Fan::parse(b"MSG 7"), Some(Fan::Msg(Some(7))));
    assert_eq!(Fan::parse(b"MSG hello"), Some(Fan::Msg(None)));
    assert_eq!(Fan::parse(b"OK 19001"), Some(Fan::Ok(Some(19001))));
    assert_eq!(Fan::parse(b"PONG"), None);
    assert_eq!(Fan::parse(b"MSGX 1"), None);
}

#[test]
fn several_sources_need_a_loopback_server() {
    let err = Pool::new("192.0.2.1:7373".parse().unwrap(), 2)
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(Pool::new("192.0.2.1:7373".parse().unwrap(), 1).is_ok());
}
