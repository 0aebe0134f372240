//! A joined client's WebSocket frame through the signaling layer's parser and its mapping to a
//! room command, then into a real room (`switchyard_signaling::fuzzing::signaling_frame`).
//! Invariants: nothing panics, the room handles every command within 10 s, and it never ends
//! the client's session for anything but a failed ICE connection.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchyard_signaling::fuzzing::signaling_frame(data);
});
