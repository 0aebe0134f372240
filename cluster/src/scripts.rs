//! The Lua scripts that make room placement and clean-up atomic in Redis: a claim cannot race
//! another claim, a release never frees a room another node has taken meanwhile or a claim
//! made moments ago, and a sweep never touches a node that came back. Each node's claims are a
//! sorted set scored by when each was made (Redis's own clock). Script
//! text only; [`crate::placement`] and [`crate::registry`] run them.

/// KEYS[1] = the room key. ARGV = candidate node, key prefix, room name.
/// Returns the owner: the current one if it is alive, else the candidate, who now holds it
/// (its claim stamped with the time, so it is not released before its join arrives).
pub const CLAIM: &str = r#"
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', ARGV[2] .. 'alive:' .. owner) == 1 then
  return owner
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', ARGV[2] .. 'claims:' .. ARGV[1], now, ARGV[3])
if owner and owner ~= ARGV[1] then
  redis.call('ZREM', ARGV[2] .. 'claims:' .. owner, ARGV[3])
end
return ARGV[1]
"#;

/// ARGV = node, key prefix, then the names of the rooms the node serves. Claims each for the
/// node, as [`CLAIM`] does, in one call; returns the rooms another live node holds, each
/// followed by that node, when the node was not yet listed as serving a part of it. A room
/// another live node owns is never claimed: the node is listed (again) as serving a part of it.
pub const REASSERT: &str = concat!(
    "local PART_TTL = ",
    "10000",
    r#"
local node, p = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local taken = {}
for i = 3, #ARGV do
  local room = ARGV[i]
  local owner = redis.call('GET', p .. 'room:' .. room)
  local parts = p .. 'parts:' .. room
  local part = redis.call('ZSCORE', parts, node)
  if owner and owner ~= node and redis.call('EXISTS', p .. 'alive:' .. owner) == 1 then
    -- Served here while another live node owns it: a part of a room that spans nodes (listed
    -- when a full node sent joins here, or found split after Redis lost track): renewed, so
    -- the nodes link up and nobody is moved.
    redis.call('ZADD', parts, now + PART_TTL, node)
    redis.call('PEXPIRE', parts, 3 * PART_TTL)
    if not (part and tonumber(part) >= now) then
      table.insert(taken, room)
      table.insert(taken, owner)
    end
  elseif owner ~= node then
    redis.call('ZREM', parts, node)
    redis.call('SET', p .. 'room:' .. room, node)
    redis.call('ZADD', p .. 'claims:' .. node, now, room)
    if owner then
      redis.call('ZREM', p .. 'claims:' .. owner, room)
    end
  end
end
return taken
"#
);

/// KEYS[1] = the room key. ARGV = node, key prefix, room name, least age in ms.
/// Frees the room if `node` still owns it and claimed it at least that long ago (a join placed
/// by a fresh claim is on its way); returns 1 if it did.
pub const RELEASE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claims = ARGV[2] .. 'claims:' .. ARGV[1]
local used = redis.call('ZSCORE', claims, ARGV[3])
if used and now - tonumber(used) < tonumber(ARGV[4]) then
  return 0
end
redis.call('ZREM', claims, ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// ARGV = key prefix, node. Removes every trace of a node whose heartbeat is gone; returns the
/// number of rooms freed, or -1 if the node is alive after all.
pub const SWEEP: &str = r#"
local p, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'alive:' .. node) == 1 then
  return -1
end
local freed = 0
for _, room in ipairs(redis.call('ZRANGE', p .. 'claims:' .. node, 0, -1)) do
  if redis.call('GET', p .. 'room:' .. room) == node then
    redis.call('DEL', p .. 'room:' .. room)
    freed = freed + 1
  end
end
redis.call('DEL', p .. 'claims:' .. node, p .. 'node:' .. node, p .. 'rooms:' .. node)
redis.call('SREM', p .. 'nodes', node)
return freed
"#;

/// How long a part of a room stays listed without being renewed (milliseconds; the heartbeat
/// renews it every 2 s). Must match the value in [`REASSERT`].
pub const PART_TTL_MS: u64 = 10_000;

/// KEYS[1] = the room's parts. ARGV = node, TTL in ms. Lists `node` as serving a part of the
/// room, until renewed or expired.
pub const ADD_PART: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 3 * tonumber(ARGV[2]))
return 1
"#;

/// KEYS[1] = the room's parts. Drops expired parts; returns the rest.
pub const PARTS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"#;
