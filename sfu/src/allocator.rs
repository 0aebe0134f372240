//! The per-receiver bandwidth allocator: shares one receiver's downlink estimate among its video
//! subscriptions by choosing a simulcast layer (or a pause) for each.
//! A plain struct with no I/O and no clock of its own (`now` is passed in): it never touches a
//! packet, never sends or asks for padding probes, and never panics on what it is given.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use protocol::{Layer, TrackSource};

use crate::upgrade_backoff::UpgradeBackoff;

// The explicit path keeps this module buildable on its own (a scratch crate includes it by path).
#[cfg(test)]
#[path = "allocator/tests.rs"]
mod tests;

/// How much a video subscription matters when bandwidth is short; a higher one is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Anyone else's camera.
    OtherCamera,
    /// The camera of someone who is speaking now.
    ActiveSpeakerCamera,
    /// A shared screen: it reaches its cap before any camera is upgraded.
    Screen,
}

impl Priority {
    /// The priority of a video track from `source`, whose publisher is (or is not) speaking.
    pub fn of(source: TrackSource, speaking: bool) -> Priority {
        match source {
            TrackSource::Screen => Priority::Screen,
            _ if speaking => Priority::ActiveSpeakerCamera,
            _ => Priority::OtherCamera,
        }
    }
}

/// One video subscription of the receiver, as the allocator needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoDemand<K> {
    /// The caller's opaque key for the subscription (a track id, an index).
    pub key: K,
    pub priority: Priority,
    /// Per layer (`q`, `h`, `f`), what the publisher sends: `None` = not this layer at all;
    /// `Some(0)` = this layer, rate not measured yet (it just started, or the publisher paused it
    /// because nobody needed it: pass `Some(0)` then, not `None`, or no receiver will ever ask
    /// for it again); `Some(bps)` = its measured rate.
    pub bitrates: [Option<u64>; 3],
    /// The highest layer the tile needs; `None` = the tile is hidden (paused).
    pub max_layer: Option<Layer>,
    /// The layer being forwarded now (it lags the target until the next keyframe).
    pub current: Option<Layer>,
}

/// The outcome of [`Allocator::allocate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<K> {
    /// The target layer of each subscription, in input order; `None` = paused.
    pub targets: Vec<(K, Option<Layer>)>,
    /// Some visible subscription is below its cap for lack of bandwidth.
    pub deficient: bool,
    /// The targets differ from the previous allocation's (a key came, went or changed layer).
    pub changed: bool,
    /// The layers in force overshot the estimate by more than a quarter: the link is congested,
    /// and what is lowered should stop at once rather than flow until the lower layer's keyframe.
    pub congested: bool,
}

/// Layers in force above this multiple of the video budget: congestion (see
/// [`Allocation::congested`]).
const CONGESTED: f64 = 1.25;

/// Tuning of an [`Allocator`]; `Default` gives the values its documentation names.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocatorParams {
    /// The estimate assumed until the first [`Allocator::on_estimate`].
    pub initial_estimate_bps: u64,
    /// Share of the estimate that may be in use before a downgrade (0.95).
    pub headroom: f64,
    /// Share of the estimate an upgrade must fit in (0.85).
    pub upgrade_headroom: f64,
    /// Least time between two changes of layers before an upgrade round (1.5 s), doubled after
    /// each upgrade undone within 3 s (it did not fit the link), up to `max_upgrade_interval`.
    pub upgrade_interval: Duration,
    /// The longest wait between upgrade rounds after failed ones (6 s).
    pub max_upgrade_interval: Duration,
    /// Upgrades fit in the lowest estimate of the last half to whole `estimate_hold` (1 s).
    pub estimate_hold: Duration,
    /// Rates of `q`, `h`, `f` while unmeasured (150 kbps, 500 kbps, 1.5 Mbps).
    pub default_bitrates: [u64; 3],
    /// A single-layer track keeps flowing while this share of its rate is left (1/3).
    pub single_layer_min_share: f64,
}

impl Default for AllocatorParams {
    fn default() -> Self {
        AllocatorParams {
            initial_estimate_bps: 1_000_000,
            headroom: 0.95,
            upgrade_headroom: 0.85,
            upgrade_interval: Duration::from_millis(1500),
            max_upgrade_interval: Duration::from_secs(6),
            estimate_hold: Duration::from_secs(1),
            default_bitrates: [150_000, 500_000, 1_500_000],
            single_layer_min_share: 1.0 / 3.0,
        }
    }
}

/// What the allocator remembers of a subscription between two calls.
#[derive(Debug, Clone, Copy)]
struct Memory {
    target: Option<Layer>,
    wanted: bool,
}

/// One receiver's allocator. `K` is the caller's subscription key.
///
/// # Policy
///
/// Audio is not allocated, but its rate (`audio_bps`) is taken off the estimate first; video gets
/// `estimate * headroom - audio` (95 %). Subscriptions are served in priority order (screen, then
/// the active speaker's camera, then other cameras; input order breaks ties), in steps, like
/// LiveKit's "allocate lowest, then upgrade":
///
/// 1. every visible subscription gets its lowest layer, if it fits;
/// 2. screens climb layer by layer to their cap;
/// 3. cameras climb to `h` in priority order, then to `f` in priority order.
///
/// A step that does not fit is skipped (smaller later steps may still use the room) and its
/// subscription climbs no further in that pass: it is *deficient*. A tile's cap (`max_layer`) is never exceeded, except when the publisher
/// sends nothing at or below it (a single-layer track): then its lowest layer is used, since the
/// only alternative is a black tile.
///
/// # Hysteresis
///
/// * Downgrades are immediate: when the layers in force no longer fit in 95 % of the estimate,
///   they are re-fitted at once (each subscription at most at its current layer). When they
///   overshoot it by more than a quarter, the allocation says `congested`: a lowered
///   subscription then stops its current layer at once instead of waiting for the new one's
///   keyframe.
/// * Upgrades are rounds, at most one per `upgrade_interval` (1.5 s) per receiver (doubled after
///   each upgrade undone within 3 s, up to `max_upgrade_interval`, 6 s), and must fit in
///   85 % of the lowest estimate of the last 0.5-1 s (`estimate_hold`): a 10 % band in which
///   nothing moves, and a spike of the estimate upgrades nothing. A round re-runs the whole greedy
///   fit and is taken only when it is better in grant order than what is in force: it may move
///   bandwidth to a step that comes earlier (a new screen share's layers from cameras, a paused
///   camera's `q` from someone's `f`), never the other way.
/// * A subscription that has just appeared (or whose tile just became visible) is started at once,
///   without waiting for an upgrade round.
///
/// # Rates
///
/// A layer whose rate is not measured yet counts with a default (q 150 kbps, h 500 kbps,
/// f 1.5 Mbps). A single-layer publication (one layer sent) is either that layer or paused; it is
/// kept flowing as long as at least a third of its rate is left at its turn, since there is
/// nothing lower to fall back to (it may then overshoot; the estimator settles it).
///
/// # No probing
///
/// The SFU sends no padding probes: `rtc` 0.21 pads a packet with at most 4 bytes, and duplicate
/// packets sent as probes were reported lost by Chromium's transport-wide feedback (measured:
/// they collapsed the estimate). The estimate climbs by itself while the link stays calm
/// (`downlink_estimator.rs`); upgrades happen as it rises, at most one round per 1.5 s, and each
/// upgrade is the test of the link.
#[derive(Debug)]
pub struct Allocator<K> {
    params: AllocatorParams,
    estimate: u64,
    floor: Floor,
    last_change: Option<Instant>,
    backoff: UpgradeBackoff,
    memory: HashMap<K, Memory>,
}

impl<K: Copy + Eq + Hash> Allocator<K> {
    /// A new allocator for a receiver that joins at `now`.
    pub fn new(params: AllocatorParams, now: Instant) -> Self {
        let estimate = params.initial_estimate_bps;
        let mut backoff = UpgradeBackoff::new(params.upgrade_interval, params.max_upgrade_interval);
        // A receiver that just joined starts with its tiles' first layers, not with upgrades.
        backoff.downgraded(now);
        Allocator {
            params,
            estimate,
            floor: Floor::new(estimate, now),
            last_change: None,
            backoff,
            memory: HashMap::new(),
        }
    }

    /// The latest estimate, in bps.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate
    }

    /// The lowest estimate of the last 0.5-1 s: what an upgrade must fit in.
    pub fn held_estimate_bps(&mut self, now: Instant) -> u64 {
        let half = self.params.estimate_hold / 2;
        self.floor.get(self.estimate, now, half)
    }

    /// A new estimate from the congestion controller; call [`Allocator::allocate`] after it.
    pub fn on_estimate(&mut self, bps: u64, now: Instant) {
        self.estimate = bps;
        let half = self.params.estimate_hold / 2;
        self.floor.push(bps, now, half);
    }

    /// Chooses the layer of every subscription in `demands`. Call it after each estimate and on
    /// a regular tick (every 100-500 ms: upgrades happen only in a call) and whenever a
    /// subscription comes, goes or changes its tile. Keys absent from `demands` are forgotten.
    pub fn allocate(
        &mut self,
        audio_bps: u64,
        demands: &[VideoDemand<K>],
        now: Instant,
    ) -> Allocation<K> {
        let plan = Plan::new(demands, &self.params);
        let baseline: Vec<Option<Layer>> = demands
            .iter()
            .zip(&plan.rows)
            .map(|(d, row)| {
                let remembered = self.memory.get(&d.key).map(|m| m.target);
                row.sanitize(remembered.unwrap_or(d.current))
            })
            .collect();
        let fresh: Vec<bool> = demands
            .iter()
            .zip(&plan.rows)
            .map(|(d, row)| {
                row.limit.is_some() && self.memory.get(&d.key).is_none_or(|m| !m.wanted)
            })
            .collect();

        let video = scale(self.estimate, self.params.headroom).saturating_sub(audio_bps);
        let held = self
            .floor
            .get(self.estimate, now, self.params.estimate_hold / 2);
        let upgrade_video = scale(held, self.params.upgrade_headroom).saturating_sub(audio_bps);
        let known_or_fresh: Vec<Option<Layer>> = plan
            .rows
            .iter()
            .zip(&baseline)
            .zip(&fresh)
            .map(|((row, b), f)| if *f { row.limit } else { *b })
            .collect();

        let kept = plan.walk(&baseline, video);
        let downgraded = kept != baseline;
        let in_force: u64 = plan
            .rows
            .iter()
            .zip(&baseline)
            .map(|(row, layer)| row.rate(*layer))
            .sum();
        let congested = downgraded && in_force as f64 > video as f64 * CONGESTED;
        let mut upgraded = false;
        let targets = if downgraded {
            // Over budget: re-fit now, nobody above what is in force (new tiles may compete).
            plan.walk(&known_or_fresh, video)
        } else {
            let upgrade_ok = self.upgrade_allowed(now);
            if upgrade_ok || fresh.iter().any(|f| *f) {
                let ceilings = if upgrade_ok {
                    plan.rows.iter().map(|r| r.limit).collect()
                } else {
                    known_or_fresh
                };
                let offer = plan.walk(&ceilings, upgrade_video);
                if plan.better(&offer, &baseline) {
                    upgraded = upgrade_ok;
                    offer
                } else {
                    baseline.clone()
                }
            } else {
                baseline.clone()
            }
        };

        if downgraded {
            self.backoff.downgraded(now);
        } else if upgraded {
            self.backoff.upgraded(now);
        }
        if targets != baseline {
            self.last_change = Some(now);
        }
        let deficient = plan
            .rows
            .iter()
            .zip(&targets)
            .any(|(r, t)| r.limit.is_some() && *t < r.limit);
        let changed = demands.len() != self.memory.len()
            || demands
                .iter()
                .zip(&targets)
                .any(|(d, t)| self.memory.get(&d.key).is_none_or(|m| m.target != *t));

        self.memory.clear();
        for ((d, row), t) in demands.iter().zip(&plan.rows).zip(&targets) {
            let wanted = row.limit.is_some();
            self.memory.insert(d.key, Memory { target: *t, wanted });
        }
        Allocation {
            targets: demands
                .iter()
                .zip(targets)
                .map(|(d, t)| (d.key, t))
                .collect(),
            deficient,
            changed,
            congested,
        }
    }

    fn upgrade_allowed(&mut self, now: Instant) -> bool {
        let allowed = self.backoff.allowed(now);
        let wait = self.backoff.wait();
        allowed
            && self
                .last_change
                .is_none_or(|t| now.saturating_duration_since(t) >= wait)
    }
}

/// The lowest estimate of the last one to two half-windows, in two buckets.
#[derive(Debug, Clone, Copy)]
struct Floor {
    since: Instant,
    previous: u64,
    current: u64,
}

impl Floor {
    fn new(bps: u64, now: Instant) -> Floor {
        Floor {
            since: now,
            previous: bps,
            current: bps,
        }
    }

    /// Starts a new bucket when the current one is `half` old; `latest` is the estimate in force.
    fn roll(&mut self, latest: u64, now: Instant, half: Duration) {
        let age = now.saturating_duration_since(self.since);
        if age >= half.saturating_mul(2) {
            *self = Floor::new(latest, now);
        } else if age >= half {
            *self = Floor {
                since: now,
                previous: self.current,
                current: latest,
            };
        }
    }

    fn push(&mut self, bps: u64, now: Instant, half: Duration) {
        self.roll(bps, now, half);
        self.current = self.current.min(bps);
    }

    fn get(&mut self, latest: u64, now: Instant, half: Duration) -> u64 {
        self.roll(latest, now, half);
        self.previous.min(self.current)
    }
}

/// Which layers of one publication its receivers need, from every receiver's target for it:
/// `[q, h, f]`: each layer some receiver gets, and the lowest one whenever anyone gets any. The
/// lowest layer is the fallback of a receiver whose link suddenly turns thin: kept running, the
/// receiver drops to it at its next keyframe (a PLI away); paused, it waits for the publisher's
/// encoder to start again while its link is flooded. (LiveKit's dynacast keeps every layer up to
/// the highest watched one; the lowest alone costs a publisher about a sixth of `h`.)
pub fn needed_layers(targets: impl IntoIterator<Item = Option<Layer>>) -> [bool; 3] {
    let mut needed = [false; 3];
    for layer in targets.into_iter().flatten() {
        needed[layer.index()] = true;
        needed[Layer::Q.index()] = true;
    }
    needed
}

/// `bps * share`, rounded down (saturating; a negative or NaN share gives 0).
fn scale(bps: u64, share: f64) -> u64 {
    (bps as f64 * share) as u64
}

/// One subscription, as the greedy fit sees it.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Rate per layer with defaults applied; `None` = not sent.
    rates: [Option<u64>; 3],
    /// The highest layer it may get; `None` = hidden or nothing sent.
    limit: Option<Layer>,
    /// The layer it starts at (the lowest sent, at or below the limit).
    start: Option<Layer>,
    /// The publisher sends one layer only.
    single: bool,
}

impl Row {
    fn new(d: &VideoDemand<impl Copy>, defaults: [u64; 3]) -> Row {
        let mut rates = [None; 3];
        for layer in Layer::ALL {
            let i = layer.index();
            rates[i] = d.bitrates[i].map(|bps| if bps == 0 { defaults[i] } else { bps });
        }
        let sent = |l: &Layer| rates[l.index()].is_some();
        let lowest = Layer::ALL.into_iter().find(sent);
        let limit = d.max_layer.and_then(|cap| {
            let at_or_below = Layer::ALL
                .into_iter()
                .filter(|l| *l <= cap)
                .rev()
                .find(sent);
            at_or_below.or(lowest)
        });
        Row {
            rates,
            limit,
            start: limit.and(lowest),
            single: Layer::ALL.into_iter().filter(sent).count() == 1,
        }
    }

    fn rate(&self, layer: Option<Layer>) -> u64 {
        layer.and_then(|l| self.rates[l.index()]).unwrap_or(0)
    }

    /// The layer in force, made valid: at most the limit, and one that is sent.
    fn sanitize(&self, layer: Option<Layer>) -> Option<Layer> {
        let top = layer?.min(self.limit?);
        Layer::ALL
            .into_iter()
            .rfind(|l| *l <= top && self.rates[l.index()].is_some())
            .or(self.start)
    }
}

/// The subscriptions of one allocation and the order in which layers are handed out.
struct Plan {
    rows: Vec<Row>,
    /// (subscription, layer) in the order the greedy fit grants them.
    steps: Vec<(usize, Layer)>,
    single_layer_min_share: f64,
}

impl Plan {
    fn new<K: Copy>(demands: &[VideoDemand<K>], params: &AllocatorParams) -> Plan {
        let rows: Vec<Row> = demands
            .iter()
            .map(|d| Row::new(d, params.default_bitrates))
            .collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(demands[i].priority));
        let screen = |i: usize| demands[i].priority == Priority::Screen;
        let upgrade = |i: usize, l: Layer| {
            let r = &rows[i];
            r.rates[l.index()].is_some() && r.start.is_some_and(|s| l > s) && r.limit >= Some(l)
        };

        let mut steps = Vec::with_capacity(rows.len() * 3);
        steps.extend(order.iter().filter_map(|&i| rows[i].start.map(|s| (i, s))));
        for &i in order.iter().filter(|&&i| screen(i)) {
            steps.extend(
                Layer::ALL
                    .into_iter()
                    .filter(|&l| upgrade(i, l))
                    .map(|l| (i, l)),
            );
        }
        for layer in [Layer::H, Layer::F] {
            let cameras = order.iter().filter(|&&i| !screen(i) && upgrade(i, layer));
            steps.extend(cameras.map(|&i| (i, layer)));
        }
        Plan {
            rows,
            steps,
            single_layer_min_share: params.single_layer_min_share,
        }
    }

    /// The greedy fit: grants steps in order while they fit in `budget`, never giving a
    /// subscription more than its ceiling. A subscription whose step does not fit gets no more.
    fn walk(&self, ceilings: &[Option<Layer>], budget: u64) -> Vec<Option<Layer>> {
        let mut out: Vec<Option<Layer>> = vec![None; self.rows.len()];
        let mut stopped = vec![false; self.rows.len()];
        let mut spent = 0u64;
        for &(i, layer) in &self.steps {
            let (Some(row), Some(ceiling)) = (self.rows.get(i), ceilings.get(i).copied().flatten())
            else {
                continue;
            };
            if stopped[i] || layer > ceiling {
                continue;
            }
            let (old, new) = (row.rate(out[i]), row.rate(Some(layer)));
            let left = budget.saturating_sub(spent);
            let fits = new.saturating_sub(old) <= left
                || (row.single
                    && out[i].is_none()
                    && left > 0
                    && left >= scale(new, self.single_layer_min_share));
            if fits {
                out[i] = Some(layer);
                spent = spent.saturating_sub(old).saturating_add(new);
            } else {
                stopped[i] = true;
            }
        }
        out
    }

    /// Whether `a` is better than `b` in priority order: the first step (in grant order) that
    /// one of them has and the other lacks belongs to `a`.
    fn better(&self, a: &[Option<Layer>], b: &[Option<Layer>]) -> bool {
        let has = |v: &[Option<Layer>], i: usize, l: Layer| v.get(i).copied().flatten() >= Some(l);
        self.steps
            .iter()
            .find(|&&(i, l)| has(a, i, l) != has(b, i, l))
            .is_some_and(|&(i, l)| has(a, i, l))
    }
}
