//! Offer/answer for a participant's two connections. The publisher connection is answered as the
//! client offers; the subscriber connection is offered by the server with at most one offer in
//! flight, a queued second round, a rollback when the client's answer is refused, and a timeout
//! after which an unanswered offer is rolled back and made again. It never sends anything: it
//! returns the SDP to send, and the room sends it.

use std::time::{Duration, Instant};

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::shared::error::Error;

/// How long an offer may wait for its answer before it is rolled back and made again.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// The subscriber connection's offer/answer state: at most one offer in flight.
#[derive(Debug, Default)]
pub(crate) struct Negotiator {
    /// When the offer in flight was made; `None` when no offer waits for an answer.
    offered_at: Option<Instant>,
    /// Tracks changed while an offer was in flight: offer again once it is answered.
    again: bool,
    ever_offered: bool,
}

/// Why the client's answer was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("no subscriber offer is waiting for an answer")]
    NoOfferPending,
    /// The offer was rolled back: the caller makes a new one.
    #[error("the subscriber answer was refused: {0}")]
    Refused(String),
}

impl Negotiator {
    /// Creates and sets an offer with the connection's current tracks, or, while an offer waits
    /// for its answer, queues another round. `Ok(None)`: nothing to send now.
    pub fn offer(
        &mut self,
        pc: &mut RTCPeerConnection,
        now: Instant,
    ) -> Result<Option<String>, Error> {
        if self.offered_at.is_some() {
            self.again = true;
            return Ok(None);
        }
        let has_tracks = pc.get_senders().next().is_some();
        if !has_tracks && !self.ever_offered {
            return Ok(None);
        }
        let offer = pc.create_offer(None)?;
        pc.set_local_description(now, offer.clone())?;
        self.offered_at = Some(now);
        self.ever_offered = true;
        Ok(Some(offer.sdp))
    }

    /// Applies the client's answer. `Ok(true)`: tracks changed meanwhile, offer again. On
    /// [`AnswerError::Refused`] the offer has been rolled back and the caller must offer again,
    /// so a bad answer never leaves the participant waiting forever.
    pub fn answer(
        &mut self,
        pc: &mut RTCPeerConnection,
        sdp: String,
        now: Instant,
    ) -> Result<bool, AnswerError> {
        if self.offered_at.is_none() {
            return Err(AnswerError::NoOfferPending);
        }
        // The engine marks an answer applied before it has checked all of it, so an answer it
        // then refuses could not be rolled back; check what it would trip on first.
        let offer = pc
            .pending_local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        if let Err(why) = answer_fits_offer(&offer, &sdp) {
            self.roll_back(pc, now);
            return Err(AnswerError::Refused(why));
        }
        match RTCSessionDescription::answer(sdp).and_then(|a| pc.set_remote_description(now, a)) {
            Ok(()) => {
                self.offered_at = None;
                Ok(std::mem::take(&mut self.again))
            }
            Err(e) => {
                self.roll_back(pc, now);
                Err(AnswerError::Refused(e.to_string()))
            }
        }
    }

    /// When the offer in flight times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.offered_at.map(|at| at + ANSWER_TIMEOUT)
    }

    /// Rolls back an offer that went unanswered for [`ANSWER_TIMEOUT`]. True when it did: the
    /// caller then offers again.
    pub fn expire(&mut self, pc: &mut RTCPeerConnection, now: Instant) -> bool {
        if self.deadline().is_some_and(|d| now >= d) {
            self.roll_back(pc, now);
            return true;
        }
        false
    }

    fn roll_back(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        if let Ok(rollback) = RTCSessionDescription::rollback(None)
            && let Err(e) = pc.set_local_description(now, rollback)
        {
            tracing::debug!(error = %e, "rolling back the subscriber offer failed");
        }
        self.offered_at = None;
        self.again = false;
    }
}

/// Answers the client's offer on its publisher connection; returns our answer's SDP.
pub(crate) fn answer_publisher_offer(
    pc: &mut RTCPeerConnection,
    sdp: String,
    now: Instant,
) -> Result<String, Error> {
    let offer = RTCSessionDescription::offer(sdp)?;
    pc.set_remote_description(now, offer)?;
    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer.clone())?;
    Ok(answer.sdp)
}

/// The audio and video sections of an offer from an HTTP client (WHIP, WHEP), by direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferMedia {
    /// Sections (not rejected) in which the client would send: `sendonly` or `sendrecv`.
    pub sending: usize,
    /// Sections (not rejected) in which the client would receive: `recvonly` or `sendrecv`.
    pub receiving: usize,
}

/// Why an offer from an HTTP client cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the body is not a valid SDP offer ({0})")]
    Unparsable(String),
    #[error("the SDP offer has no audio or video section (m=audio or m=video)")]
    NoMedia,
}

/// Parses an SDP offer (as the engine will) and counts its audio and video sections by
/// direction. It never panics, whatever the text.
pub fn inspect_offer(sdp: &str) -> Result<OfferMedia, OfferError> {
    let parsed = RTCSessionDescription::offer(sdp.to_owned())
        .and_then(|offer| offer.unmarshal())
        .map_err(|e| OfferError::Unparsable(e.to_string()))?;
    let mut media = OfferMedia::default();
    let mut any = false;
    for section in &parsed.media_descriptions {
        if !matches!(section.media_name.media.as_str(), "audio" | "video") {
            continue;
        }
        any = true;
        if section.media_name.port.value == 0 {
            continue;
        }
        let has = |key: &str| section.has_attribute(key);
        let (send, receive) = if has("inactive") {
            (false, false)
        } else if has("sendonly") {
            (true, false)
        } else if has("recvonly") {
            (false, true)
        } else {
            (true, true)
        };
        media.sending += usize::from(send);
        media.receiving += usize::from(receive);
    }
    if !any {
        return Err(OfferError::NoMedia);
    }
    Ok(media)
}

/// Checks that `answer` answers `offer`: the same media sections (mids) in the same order, and
/// ICE credentials and a DTLS fingerprint. Says what is wrong otherwise.
pub(crate) fn answer_fits_offer(offer: &str, answer: &str) -> Result<(), String> {
    fn mids(sdp: &str) -> Vec<&str> {
        sdp.lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
            .collect()
    }
    let (offered, answered) = (mids(offer), mids(answer));
    if offered != answered {
        return Err(format!(
            "it answers media sections {answered:?}, but the offer has {offered:?}: answer the \
             latest subscriber offer"
        ));
    }
    for attribute in ["a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"] {
        if !answer
            .lines()
            .any(|l| l.trim_start().starts_with(attribute))
        {
            return Err(format!("it has no {attribute} line"));
        }
    }
    Ok(())
}

/// True when an SDP offer has an audio or video section the offerer would send on.
pub(crate) fn offers_to_send_media(sdp: &str) -> bool {
    let mut in_media = false;
    let mut sends = false;
    let mut any = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            if in_media && sends {
                any = true;
            }
            in_media = rest.starts_with("audio") || rest.starts_with("video");
            sends = true; // sendrecv is the default direction
        } else if in_media {
            match line {
                "a=recvonly" | "a=inactive" => sends = false,
                "a=sendonly" | "a=sendrecv" => sends = true,
                _ => {}
            }
        }
    }
    any || (in_media && sends)
}

#[cfg(test)]
mod tests {
    use super::{OfferError, answer_fits_offer, inspect_offer, offers_to_send_media};

    #[test]
    fn an_answer_must_answer_the_offer_it_gets() {
        let offer = "v=0\r\nm=audio 9 x 111\r\na=mid:0\r\nm=video 9 x 96\r\na=mid:1\r\n";
        let good = "v=0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 AA\r\n\
                    m=audio 9 x 111\r\na=mid:0\r\nm=video 9 x 96\r\na=mid:1\r\n";
        assert_eq!(answer_fits_offer(offer, good), Ok(()));
        let other_mids = good.replace("a=mid:1", "a=mid:7");
        assert!(
            answer_fits_offer(offer, &other_mids)
                .unwrap_err()
                .contains("[\"0\", \"7\"]")
        );
        let fewer = "v=0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:x\r\nm=audio 9 x 111\r\na=mid:0\r\n";
        assert!(answer_fits_offer(offer, fewer).is_err());
        let no_ice = good.replace("a=ice-pwd:p\r\n", "");
        assert_eq!(
            answer_fits_offer(offer, &no_ice),
            Err("it has no a=ice-pwd: line".into())
        );
    }

    #[test]
    fn detects_offers_that_send_media() {
        let send = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\nm=application 9 x\r\n";
        assert!(offers_to_send_media(send));
        let recv = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        assert!(!offers_to_send_media(recv));
        let data = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert!(!offers_to_send_media(data));
        let default_dir = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
        assert!(offers_to_send_media(default_dir));
    }

    #[test]
    fn offers_from_http_clients_are_parsed_and_counted() {
        let head = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        let whip = format!(
            "{head}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\n"
        );
        assert_eq!(
            inspect_offer(&whip),
            Ok(super::OfferMedia {
                sending: 2,
                receiving: 0
            })
        );
        let whep = whip.replace("sendonly", "recvonly");
        assert_eq!(inspect_offer(&whep).map(|m| m.receiving), Ok(2));
        let data = format!("{head}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
        assert_eq!(inspect_offer(&data), Err(OfferError::NoMedia));
        assert_eq!(inspect_offer(head), Err(OfferError::NoMedia));
        for garbage in [
            "",
            "hello",
            "v=0\r\nm=",
            "\u{0}\u{ffff}",
            "m=audio x y z\r\n",
        ] {
            assert!(inspect_offer(garbage).is_err(), "{garbage:?} was accepted");
        }
    }
}
