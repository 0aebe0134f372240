//! Replays every committed fuzz seed (`<crate>/fuzz/seeds/<target>/`) through the entry points its
//! fuzz target calls, without fuzzing, so a regression on any known input fails CI. A seed fails
//! the test if it panics anywhere, even where the room catches a panic to survive it. It only
//! reads the seeds; it never writes to a corpus.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use turn_server::wire::{classify, parse_channel_data, stream_frame_len};

/// How one seed of a target is replayed.
type Replay = fn(&[u8]);

/// Every fuzz target: its crate's fuzz folder, its name, and how one seed is replayed.
const TARGETS: &[(&str, &str, Replay)] = &[
    ("turn-server/fuzz", "stun_message", turn_stun_message),
    ("turn-server/fuzz", "channel_data_framing", turn_framing),
    (
        "signaling/fuzz",
        "signaling_message",
        signaling::fuzzing::signaling_frame,
    ),
    (
        "signaling/fuzz",
        "sdp_offer_answer",
        signaling::fuzzing::sdp,
    ),
    ("sfu/fuzz", "room_datagram", sfu::fuzzing::room_datagram),
];

fn turn_stun_message(seed: &[u8]) {
    let _ = turn_server::fuzzing::handle_client_packet(seed);
}

/// The parts of `channel_data_framing` that read the input: stream framing and ChannelData.
fn turn_framing(seed: &[u8]) {
    let _ = classify(seed);
    let _ = parse_channel_data(seed);
    let mut rest = seed;
    while let Ok(Some(len)) = stream_frame_len(rest) {
        let _ = parse_channel_data(&rest[..len]);
        rest = &rest[len..];
    }
}

/// Panics seen anywhere in this process, including ones caught with `catch_unwind`.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // As the other tests: `TEST_LOG=switchyard_sfu=debug` shows what the rooms decide.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .with_test_writer()
            .try_init();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

/// The seeds of one target, sorted by name. Panics if there are none.
fn seeds(fuzz_dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace().join(fuzz_dir).join("seeds").join(target);
    let listing =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = listing
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes =
                fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(
        !seeds.is_empty(),
        "{} holds no seeds: every fuzz target commits its corpus",
        dir.display()
    );
    seeds
}

fn replay(target: &str) {
    count_panics();
    let &(fuzz_dir, _, entry) = TARGETS
        .iter()
        .find(|(_, name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let seeds = seeds(fuzz_dir, target);
    for (path, bytes) in &seeds {
        let before = PANICS.load(Ordering::SeqCst);
        entry(bytes);
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            before,
            "{target}: replaying {} panicked (see the panic message above)",
            path.display()
        );
    }
    eprintln!("{target}: {} seeds replayed", seeds.len());
}

#[test]
fn every_fuzz_target_has_its_seeds_replayed_here() {
    for fuzz_dir in ["turn-server/fuzz", "signaling/fuzz", "sfu/fuzz"] {
        let manifest = workspace().join(fuzz_dir).join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
        for block in text.split("[[bin]]").skip(1) {
            let name = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .map(|n| n.trim_matches('"'))
                .unwrap_or_else(|| panic!("a [[bin]] without a name in {}", manifest.display()));
            assert!(
                TARGETS.iter().any(|(d, n, _)| *d == fuzz_dir && *n == name),
                "the fuzz target {fuzz_dir}/{name} is not replayed by this test: add it to TARGETS"
            );
        }
    }
}

#[test]
fn stun_message_seeds_replay() {
    replay("stun_message");
}

#[test]
fn channel_data_framing_seeds_replay() {
    replay("channel_data_framing");
}

#[test]
fn signaling_message_seeds_replay() {
    replay("signaling_message");
}

#[test]
fn sdp_offer_answer_seeds_replay() {
    replay("sdp_offer_answer");
}

#[test]
fn room_datagram_seeds_replay() {
    replay("room_datagram");
}
