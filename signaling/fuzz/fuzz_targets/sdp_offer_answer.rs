//! SDP into negotiation: each input is a joined client's publisher offer, then its answer to a
//! pending subscriber offer, in a real room (`switchyard_signaling::fuzzing::sdp`), so the `rtc`
//! SDP parser and Switchyard's negotiator run on it. Invariants as for `signaling_message`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchyard_signaling::fuzzing::sdp(data);
});
