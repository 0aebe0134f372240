//! Which simulcast layer one down-track forwards: the current layer, the target the allocator
//! chose, and the rule that a switch (up, down, or to a layer in between) happens only at a
//! keyframe start of the new layer. A plain state machine: no I/O, no clock, never panics.

/// What to do with one packet, as far as layers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAction {
    /// A packet of the source being forwarded.
    Forward,
    /// This packet starts forwarding its layer (a keyframe start; any packet for audio).
    Switch,
    /// Nothing is forwarded: the target is `None`.
    Paused,
    /// A packet of a layer not forwarded, with no switch pending.
    OtherLayer,
    /// Not forwarded: a keyframe is needed on this layer first.
    NeedKeyframe(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    layer: u8,
    ssrc: u32,
}

/// The current and target layer of one down-track (layers are 0 = lowest resolution upwards).
///
/// Like LiveKit's simulcast selector: while current and target differ, a keyframe start of any
/// layer between them (past current, up to and including target, in the target's direction)
/// becomes current, so an upgrade can go through an intermediate layer whose keyframe comes
/// first and a start or resume takes the first keyframe of any layer up to the target. Until the
/// switch the current layer keeps flowing; a pause (target `None`) stops it at once.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    video: bool,
    current: Option<Source>,
    target: Option<u8>,
}

impl LayerSelector {
    /// `video` false (audio): no keyframes needed, a switch happens on any packet.
    pub fn new(video: bool, target: Option<u8>) -> Self {
        LayerSelector {
            video,
            current: None,
            target,
        }
    }

    /// Sets the layer to reach; `None` pauses at once (resuming then waits for a keyframe).
    pub fn set_target(&mut self, target: Option<u8>) {
        self.target = target;
        if target.is_none() {
            self.current = None;
        }
    }

    /// Sets a lower target and stops forwarding the current layer at once when it is above it
    /// (the link is congested: better a short freeze of this video until the lower layer's
    /// keyframe than more of what the link cannot carry). Otherwise as [`Self::set_target`].
    pub fn drop_to(&mut self, target: Option<u8>) {
        self.set_target(target);
        if self
            .current
            .is_some_and(|c| target.is_none_or(|t| c.layer > t))
        {
            self.current = None;
        }
    }

    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The layer being forwarded, `None` before the first keyframe or while paused.
    pub fn current(&self) -> Option<u8> {
        self.current.map(|c| c.layer)
    }

    /// The layer a keyframe is wanted on: the target, while video is not forwarding it.
    pub fn wanted_keyframe(&self) -> Option<u8> {
        let target = self.target?;
        (self.video && self.current() != Some(target)).then_some(target)
    }

    /// Decides for one packet of `layer` from `ssrc`. `keyframe_start`: the packet begins a
    /// keyframe; `padding`: it carries no media (never a switch point).
    pub fn select(
        &mut self,
        layer: u8,
        ssrc: u32,
        keyframe_start: bool,
        padding: bool,
    ) -> LayerAction {
        let Some(target) = self.target else {
            return LayerAction::Paused;
        };
        let can_start = !padding && (keyframe_start || !self.video);
        let here = Source { layer, ssrc };
        match self.current {
            Some(c) if c == here => return LayerAction::Forward,
            Some(c) if c.layer == layer => {
                // The publisher restarted this layer under a new SSRC; its stragglers under the
                // old one are not mixed into the new run.
                if can_start {
                    self.current = Some(here);
                    return LayerAction::Switch;
                }
                return LayerAction::NeedKeyframe(layer);
            }
            _ => {}
        }
        let current = self.current();
        if can_start && reachable(current, target, layer) {
            self.current = Some(here);
            LayerAction::Switch
        } else if current == Some(target) || !self.video {
            LayerAction::OtherLayer
        } else {
            LayerAction::NeedKeyframe(target)
        }
    }
}

/// Whether a keyframe of `layer` may become current: past `current` up to `target` in the
/// target's direction, or any layer up to the target when nothing is forwarded.
fn reachable(current: Option<u8>, target: u8, layer: u8) -> bool {
    match current {
        None => layer <= target,
        Some(c) if c < target => c < layer && layer <= target,
        Some(c) => target <= layer && layer < c,
    }
}

#[cfg(test)]
mod tests {
    use super::LayerAction::*;
    use super::*;

    /// SSRC of a layer in these tests.
    fn ssrc(layer: u8) -> u32 {
        100 + u32::from(layer)
    }

    #[test]
    fn switch_points_per_current_and_target() {
        // (current, target, packet layer, keyframe start) -> action, new current.
        let table = [
            (None, Some(2), 2, false, NeedKeyframe(2), None),
            (None, Some(2), 0, true, Switch, Some(0)),
            (None, Some(1), 2, true, NeedKeyframe(1), None),
            (None, None, 0, true, Paused, None),
            (Some(0), Some(0), 0, false, Forward, Some(0)),
            (Some(0), Some(0), 1, true, OtherLayer, Some(0)),
            (Some(0), Some(2), 0, false, Forward, Some(0)),
            (Some(0), Some(2), 2, false, NeedKeyframe(2), Some(0)),
            (Some(0), Some(2), 1, true, Switch, Some(1)),
            (Some(0), Some(2), 2, true, Switch, Some(2)),
            (Some(1), Some(2), 0, true, NeedKeyframe(2), Some(1)),
            (Some(2), Some(0), 2, false, Forward, Some(2)),
            (Some(2), Some(0), 1, true, Switch, Some(1)),
            (Some(2), Some(0), 0, true, Switch, Some(0)),
            (Some(2), Some(0), 0, false, NeedKeyframe(0), Some(2)),
            (Some(1), Some(0), 2, true, NeedKeyframe(0), Some(1)),
        ];
        for (i, (current, target, layer, key, action, after)) in table.into_iter().enumerate() {
            let mut s = LayerSelector::new(true, current);
            if let Some(c) = current {
                assert_eq!(s.select(c, ssrc(c), true, false), Switch);
            }
            s.set_target(target);
            assert_eq!(s.select(layer, ssrc(layer), key, false), action, "row {i}");
            assert_eq!(s.current(), after, "row {i}");
        }
    }

    #[test]
    fn pause_is_immediate_and_resume_waits_for_a_keyframe() {
        let mut s = LayerSelector::new(true, Some(1));
        assert_eq!(s.select(1, ssrc(1), true, false), Switch);
        assert_eq!(s.wanted_keyframe(), None);
        s.set_target(None);
        assert_eq!((s.current(), s.wanted_keyframe()), (None, None));
        assert_eq!(s.select(1, ssrc(1), false, false), Paused);
        s.set_target(Some(1));
        assert_eq!(s.wanted_keyframe(), Some(1));
        assert_eq!(s.select(1, ssrc(1), false, false), NeedKeyframe(1));
        assert_eq!(s.select(1, ssrc(1), true, false), Switch);
    }

    #[test]
    fn dropping_to_a_lower_layer_stops_the_current_one_at_once() {
        let mut s = LayerSelector::new(true, Some(2));
        assert_eq!(s.select(2, ssrc(2), true, false), Switch);
        s.drop_to(Some(0));
        assert_eq!(s.current(), None);
        assert_eq!(s.select(2, ssrc(2), false, false), NeedKeyframe(0));
        assert_eq!(s.select(0, ssrc(0), true, false), Switch);
        // Raising the target this way changes nothing in force.
        s.drop_to(Some(1));
        assert_eq!(s.current(), Some(0));
        assert_eq!(s.select(0, ssrc(0), false, false), Forward);
    }

    #[test]
    fn padding_never_switches_and_a_new_ssrc_needs_a_keyframe() {
        let mut s = LayerSelector::new(true, Some(0));
        assert_eq!(s.select(0, 7, true, true), NeedKeyframe(0));
        assert_eq!(s.select(0, 7, true, false), Switch);
        assert_eq!(s.select(0, 8, false, false), NeedKeyframe(0));
        assert_eq!(s.select(0, 8, true, false), Switch);
        assert_eq!(s.select(0, 7, false, false), NeedKeyframe(0));
        // Audio switches on any packet that is not padding.
        let mut a = LayerSelector::new(false, Some(0));
        assert_eq!(a.select(0, 1, false, true), OtherLayer);
        assert_eq!(a.select(0, 1, false, false), Switch);
        assert_eq!(a.select(0, 2, false, false), Switch);
        assert_eq!(a.wanted_keyframe(), None);
    }
}
