//! Datagrams into a room from a participant whose ICE, DTLS and SRTP are up: raw STUN-, DTLS-,
//! RTP- and RTCP-shaped bytes from its address, and RTP, RTCP, signed STUN and data-channel
//! messages from its own client (`switchyard_sfu::fuzzing::room_datagram` says how an input is
//! read). Invariants: nothing panics, and bytes sent without the participant's keys never end
//! its call.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchyard_sfu::fuzzing::room_datagram(data);
});
