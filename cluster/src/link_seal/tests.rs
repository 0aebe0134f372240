//! The handshake and sealing as data: good handshakes and frames both ways, and each way they
//! must fail (wrong secret, wrong node, another cluster, tampering, replays, gaps, garbage).

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const PREFIX: &str = "switchyard";

/// A full handshake between node-a (dialling) and node-b; returns a's and b's
/// (sealer, opener).
fn linked() -> ((Sealer, Opener), (Sealer, Opener)) {
    let (initiator, hello) = Initiator::new(SECRET, PREFIX, "node-a", "node-b").unwrap();
    let (acceptor, reply, peer) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap();
    assert_eq!(peer, "node-a");
    assert_eq!(acceptor.peer(), "node-a");
    let (confirm, a_sealer, a_opener) = initiator.on_reply(&reply).unwrap();
    let (b_sealer, b_opener) = acceptor.on_confirm(&confirm).unwrap();
    ((a_sealer, a_opener), (b_sealer, b_opener))
}

#[test]
fn a_good_handshake_carries_frames_both_ways() {
    let ((mut a_seal, mut a_open), (mut b_seal, mut b_open)) = linked();
    for i in 0..5u8 {
        let frame = a_seal.seal(&[i; 100]).unwrap();
        assert_eq!(frame.len(), 100 + SEAL_OVERHEAD);
        assert_eq!(&frame[..8], &u64::from(i).to_be_bytes());
        assert_ne!(&frame[8..108], &[i; 100][..], "the payload is encrypted");
        assert_eq!(b_open.open(&frame).unwrap(), vec![i; 100]);
        let back = b_seal.seal(format!("reply {i}").as_bytes()).unwrap();
        assert_eq!(
            a_open.open(&back).unwrap(),
            format!("reply {i}").into_bytes()
        );
    }
    // An empty frame is a frame too.
    let empty = a_seal.seal(&[]).unwrap();
    assert_eq!(b_open.open(&empty).unwrap(), Vec::<u8>::new());
    assert_eq!(a_seal.counter(), 6);
    assert_eq!(b_open.counter(), 6);
}

#[test]
fn the_two_directions_use_different_keys() {
    let ((mut a_seal, mut a_open), _) = linked();
    // A frame a sealed, reflected back at a, does not open.
    let frame = a_seal.seal(b"hello").unwrap();
    assert_eq!(a_open.open(&frame), Err(LinkError::Decrypt));
}

#[test]
fn each_connection_has_fresh_keys() {
    let ((mut first, _), _) = linked();
    let (_, (_, mut second_b_open)) = linked();
    let frame = first.seal(b"hello").unwrap();
    assert_eq!(second_b_open.open(&frame), Err(LinkError::Decrypt));
}

#[test]
fn a_wrong_secret_fails_on_both_sides() {
    // The dialler has the wrong secret: it cannot verify the acceptor's reply.
    let (initiator, hello) = Initiator::new(b"another secret", PREFIX, "node-a", "node-b").unwrap();
    let (_, reply, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap();
    let err = initiator.on_reply(&reply).unwrap_err();
    assert_eq!(
        err,
        LinkError::WrongSecret {
            peer: "node-b".into()
        }
    );
    assert!(err.to_string().contains("node-b could not prove"), "{err}");
    assert!(err.to_string().contains("api_secret"), "{err}");

    // The acceptor has the wrong secret: a confirmation by the right one does not verify
    // there (an attacker replaying a dialler's messages ends the same way).
    let (initiator, hello) = Initiator::new(SECRET, PREFIX, "node-a", "node-b").unwrap();
    let (good, reply, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap();
    let (wrong, _, _) = Acceptor::on_hello(b"another secret", PREFIX, "node-b", &hello).unwrap();
    let (confirm, _, _) = initiator.on_reply(&reply).unwrap();
    assert_eq!(
        wrong.on_confirm(&confirm).unwrap_err(),
        LinkError::WrongSecret {
            peer: "node-a".into()
        }
    );
    assert!(good.on_confirm(&confirm).is_ok());
}

#[test]
fn a_confirmation_for_another_handshake_fails() {
    let (i1, hello1) = Initiator::new(SECRET, PREFIX, "node-a", "node-b").unwrap();
    let (_, reply1, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello1).unwrap();
    let (confirm1, _, _) = i1.on_reply(&reply1).unwrap();
    // A replayed hello gets a fresh nonce from the acceptor: the old confirmation is useless.
    let (again, _, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello1).unwrap();
    assert!(matches!(
        again.on_confirm(&confirm1),
        Err(LinkError::WrongSecret { .. })
    ));
}

#[test]
fn a_wrong_expected_node_fails() {
    let (initiator, hello) = Initiator::new(SECRET, PREFIX, "node-a", "node-c").unwrap();
    let (_, reply, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap();
    let err = initiator.on_reply(&reply).unwrap_err();
    assert_eq!(
        err,
        LinkError::UnexpectedNode {
            expected: "node-c".into(),
            found: "node-b".into()
        }
    );
    assert_eq!(err.refusal(), Some(Refusal::UnexpectedNode));
}

#[test]
fn a_different_prefix_fails() {
    let (initiator, hello) = Initiator::new(SECRET, "other", "node-a", "node-b").unwrap();
    let err = Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap_err();
    assert_eq!(
        err,
        LinkError::OtherCluster {
            peer: "node-a".into(),
            ours: PREFIX.into(),
            theirs: "other".into()
        }
    );
    // The acceptor tells the dialler why.
    let refusal = refusal_bytes(err.refusal().unwrap());
    let err = initiator.on_reply(&refusal).unwrap_err();
    assert_eq!(
        err,
        LinkError::Refused {
            peer: "node-b".into(),
            reason: Refusal::OtherCluster
        }
    );
    assert!(err.to_string().contains("prefix"), "{err}");
}

#[test]
fn a_prefix_is_bound_into_the_macs() {
    // Even an acceptor that did not compare prefixes would fail: its reply's MAC covers its
    // own prefix, which the dialler does not share.
    let (initiator, hello) = Initiator::new(SECRET, "other", "node-a", "node-b").unwrap();
    let mut rewritten = vec![VERSION, HELLO];
    let mut r = Reader::new(&hello, HELLO, "x").unwrap();
    let _ = r.part().unwrap();
    put(&mut rewritten, PREFIX.as_bytes());
    put(&mut rewritten, r.part().unwrap());
    put(&mut rewritten, r.part().unwrap());
    let (_, reply, _) = Acceptor::on_hello(SECRET, PREFIX, "node-b", &rewritten).unwrap();
    assert!(matches!(
        initiator.on_reply(&reply),
        Err(LinkError::WrongSecret { .. })
    ));
}

#[test]
fn a_peer_with_our_own_id_is_refused() {
    let (_, hello) = Initiator::new(SECRET, PREFIX, "node-b", "node-b").unwrap();
    assert_eq!(
        Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello).unwrap_err(),
        LinkError::SameNodeId {
            id: "node-b".into()
        }
    );
}

#[test]
fn a_tampered_frame_fails() {
    let ((mut a_seal, _), (_, mut b_open)) = linked();
    let mut frame = a_seal.seal(b"some media").unwrap();
    frame[10] ^= 1;
    assert_eq!(b_open.open(&frame), Err(LinkError::Decrypt));
    // A tampered tag, too.
    let ((mut a_seal, _), (_, mut b_open)) = linked();
    let mut frame = a_seal.seal(b"some media").unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0x80;
    assert_eq!(b_open.open(&frame), Err(LinkError::Decrypt));
    // A truncated one.
    assert!(matches!(
        b_open.open(&frame[..10]),
        Err(LinkError::Malformed(_))
    ));
}

#[test]
fn a_replayed_frame_fails() {
    let ((mut a_seal, _), (_, mut b_open)) = linked();
    let first = a_seal.seal(b"one").unwrap();
    assert_eq!(b_open.open(&first).unwrap(), b"one");
    assert_eq!(
        b_open.open(&first),
        Err(LinkError::Replay {
            expected: 1,
            got: 0
        })
    );
    // A replay with its counter rewritten to the expected one does not authenticate.
    let mut forged = first.clone();
    forged[..8].copy_from_slice(&1u64.to_be_bytes());
    assert_eq!(b_open.open(&forged), Err(LinkError::Decrypt));
}

#[test]
fn a_skipped_frame_fails() {
    let ((mut a_seal, _), (_, mut b_open)) = linked();
    let _lost = a_seal.seal(b"one").unwrap();
    let second = a_seal.seal(b"two").unwrap();
    assert_eq!(
        b_open.open(&second),
        Err(LinkError::Skipped {
            expected: 0,
            got: 1
        })
    );
}

#[test]
fn an_exhausted_counter_fails() {
    let ((mut a_seal, _), _) = linked();
    a_seal.counter = u64::MAX;
    assert_eq!(a_seal.seal(b"x"), Err(LinkError::CounterExhausted));
}

#[test]
fn malformed_handshakes_fail_without_panicking() {
    let (_, hello) = Initiator::new(SECRET, PREFIX, "node-a", "node-b").unwrap();
    for cut in 0..hello.len() {
        assert!(matches!(
            Acceptor::on_hello(SECRET, PREFIX, "node-b", &hello[..cut]),
            Err(LinkError::Malformed(_))
        ));
    }
    let mut longer = hello.clone();
    longer.push(0);
    assert!(matches!(
        Acceptor::on_hello(SECRET, PREFIX, "node-b", &longer),
        Err(LinkError::Malformed(_))
    ));
    let mut version = hello.clone();
    version[0] = 9;
    assert!(matches!(
        Acceptor::on_hello(SECRET, PREFIX, "node-b", &version),
        Err(LinkError::Malformed(_))
    ));
    // A hello where a reply is expected.
    let (initiator, _) = Initiator::new(SECRET, PREFIX, "node-a", "node-b").unwrap();
    assert!(matches!(
        initiator.on_reply(&hello),
        Err(LinkError::Malformed(_))
    ));
}
