//! Corked fan-outs (`src/reactor/cork.rs`) against a model. With a write
//! budget of 1 to 3 a turn, most recipients of every fan-out are corked and
//! written in later turns, several messages in one `writev`; with more
//! clients than a turn's visits, fan-outs also span turns. Random clients
//! publish to all (`PUB`), to a list (`ROOM`: all the others, by id), to
//! one (`TELL`), and ping, in random chunks. Each must get every message
//! meant for it exactly once and never its own; any two clients see the
//! messages they both get in the same order (the order the server handled
//! them); each client's replies (`PONG`, `OK <n>`, `TOLD`) come in request
//! order, with the pushes between them and never inside one.
//!
//! Seeded and reproducible: `VIGIL_SEED=<n> cargo test --test push_cork`
//! replays a run; the seed is printed on failure. Time window: each run
//! completes within `PATIENCE` (5 s).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::thread;

use support::client::Client;
use support::in_process::{config_ms, Server};
use support::rng::Rng;
use vigil::protocol::PartialLine;
use vigil::{Bytes, ConnId, Context, FanOutReport, Handler, LineProtocol, Recipients};

/// The line protocol plus `PUB <id>` (to every other connection), `ROOM
/// <id>` (to a list: every other connection, by id), `TELL <k> <id>` (to
/// the k-th connection opened); each gives its recipients `MSG <id>`.
#[derive(Debug, Default)]
struct Pushes {
    lines: LineProtocol,
    opened: Vec<ConnId>,
}

impl Handler for Pushes {
    type Conn = PartialLine;

    fn on_open(&mut self, cx: &mut Context<'_>, _: &mut PartialLine) {
        self.opened.push(cx.id());
    }

    fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
        let opened = &self.opened;
        self.lines.on_data_with(cx, partial, data, |cx, line| {
            let line = std::str::from_utf8(line).unwrap();
            let me = cx.id();
            if let Some(msg) = line.strip_prefix("PUB ") {
                let payload = Bytes::from(format!("MSG {msg}\n"));
                cx.fan_out_with_reply(payload, Recipients::AllBut(me));
            } else if let Some(msg) = line.strip_prefix("ROOM ") {
                let others: Arc<[ConnId]> = opened.iter().copied().filter(|&id| id != me).collect();
                let payload = Bytes::from(format!("MSG {msg}\n"));
                cx.fan_out_with_reply(payload, Recipients::List(others));
            } else if let Some(rest) = line.strip_prefix("TELL ") {
                let (k, msg) = rest.split_once(' ').unwrap();
                let to = opened[k.parse::<usize>().unwrap()];
                let payload = Bytes::from(format!("MSG {msg}\n"));
                assert!(cx.send(to, payload).is_ok(), "{to} is open");
                cx.write(b"TOLD\n");
            } else {
                return false;
            }
            true
        });
    }

    fn on_fan_out_done(&mut self, cx: &mut Context<'_>, _: &mut PartialLine, r: FanOutReport) {
        cx.write(format!("OK {}\n", r.delivered).as_bytes());
    }
}

/// One client's script: its lines, the replies they owe, and the messages
/// (by id) it sends to each client.
struct Script {
    lines: Vec<String>,
    replies: Vec<String>,
}

#[test]
fn corked_fan_outs_keep_every_message_once_and_in_one_order() {
    let given = std::env::var("VIGIL_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = given.unwrap_or(0xc0_4c_ed);
    let runs = if given.is_some() { 1 } else { 8 };
    for run in 0..runs {
        let seed = seed.wrapping_add(run);
        let outcome = std::panic::catch_unwind(|| one_run(seed));
        if let Err(panic) = outcome {
            eprintln!("push_cork failed: VIGIL_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

fn one_run(seed: u64) {
    let mut rng = Rng(seed);
    let clients = 5 + rng.below(41) as usize;
    let mut config = config_ms(0);
    config.fan_out_budget = 1 + rng.below(3) as usize;
    config.max_output = 1 << 20;
    let server = Server::with_handler(config, Pushes::default());
    let mut conns: Vec<Client> = Vec::new();
    for _ in 0..clients {
        // One at a time, so that the k-th connection opened is client k.
        let mut c = server.connect();
        c.send(b"PING hello\n");
        c.expect(b"PONG hello");
        conns.push(c);
    }
    // Scripts, and how many messages each client must receive.
    let mut owed = vec![0usize; clients];
    let scripts: Vec<Script> = (0..clients)
        .map(|me| {
            let mut s = Script {
                lines: Vec::new(),
                replies: Vec::new(),
            };
            for k in 0..rng.below(12) {
                let id = format!("{me}.{k}");
                match rng.below(4) {
                    0 => {
                        s.lines.push(format!("PUB {id}"));
                        s.replies.push(format!("OK {}", clients - 1));
                        (0..clients).filter(|&c| c != me).for_each(|c| owed[c] += 1);
                    }
                    1 => {
                        s.lines.push(format!("ROOM {id}"));
                        s.replies.push(format!("OK {}", clients - 1));
                        (0..clients).filter(|&c| c != me).for_each(|c| owed[c] += 1);
                    }
                    2 => {
                        let to = (me + 1 + rng.below(clients as u64 - 1) as usize) % clients;
                        s.lines.push(format!("TELL {to} {id}"));
                        s.replies.push("TOLD".into());
                        owed[to] += 1;
                    }
                    _ => {
                        s.lines.push(format!("PING {id}"));
                        s.replies.push(format!("PONG {id}"));
                    }
                }
            }
            s
        })
        .collect();
    let chunk_seeds: Vec<u64> = (0..clients).map(|_| rng.next_u64()).collect();
    let threads: Vec<_> = conns
        .into_iter()
        .zip(scripts)
        .zip(owed)
        .zip(chunk_seeds)
        .map(|(((mut c, script), owed), chunk_seed)| {
            thread::spawn(move || {
                let mut text = script.lines.join("\n").into_bytes();
                if !text.is_empty() {
                    text.push(b'\n');
                }
                let mut writer = c.stream().try_clone().unwrap();
                let sender = thread::spawn(move || {
                    let mut rng = Rng(chunk_seed);
                    let mut rest = &text[..];
                    while !rest.is_empty() {
                        let n = (1 + rng.below(40) as usize).min(rest.len());
                        writer.write_all(&rest[..n]).unwrap();
                        rest = &rest[n..];
                    }
                });
                let (mut msgs, mut replies) = (Vec::new(), Vec::new());
                while msgs.len() < owed || replies.len() < script.replies.len() {
                    let Ok(Some(line)) = c.next_line(support::PATIENCE) else {
                        panic!(
                            "got {} of {owed} messages, {} of {} replies: {msgs:?} {replies:?}",
                            msgs.len(),
                            replies.len(),
                            script.replies.len()
                        );
                    };
                    let line = String::from_utf8(line).unwrap();
                    match line.strip_prefix("MSG ") {
                        Some(id) => msgs.push(id.to_owned()),
                        None => replies.push(line),
                    }
                }
                sender.join().unwrap();
                c.expect_silence(std::time::Duration::from_millis(20));
                assert_eq!(replies, script.replies, "replies in request order");
                msgs
            })
        })
        .collect();
    let seen: Vec<Vec<String>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (me, msgs) in seen.iter().enumerate() {
        let mut once = HashMap::new();
        for id in msgs {
            assert!(
                !id.starts_with(&format!("{me}.")),
                "client {me} got its own {id}"
            );
            assert!(once.insert(id, ()).is_none(), "client {me} got {id} twice");
        }
    }
    // Any two clients: the messages both got, in the same order.
    for a in 0..seen.len() {
        for b in a + 1..seen.len() {
            let in_b: HashMap<&String, usize> =
                seen[b].iter().enumerate().map(|(i, id)| (id, i)).collect();
            let order: Vec<usize> = seen[a]
                .iter()
                .filter_map(|id| in_b.get(id).copied())
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "clients {a} and {b} disagree on the order"
            );
        }
    }
}
