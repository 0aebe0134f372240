//! The Lua scripts that make room placement and clean-up atomic in Redis: a claim cannot race
//! another claim, a release never frees a room another node has taken meanwhile, and a sweep
//! never touches a node that came back. Script text only; [`crate::placement`] and
//! [`crate::registry`] run them.

/// KEYS[1] = the room key. ARGV = candidate node, key prefix, room name.
/// Returns the owner: the current one if it is alive, else the candidate, who now holds it.
pub const CLAIM: &str = r#"
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', ARGV[2] .. 'alive:' .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', ARGV[2] .. 'claims:' .. ARGV[1], ARGV[3])
if owner and owner ~= ARGV[1] then
  redis.call('SREM', ARGV[2] .. 'claims:' .. owner, ARGV[3])
end
return ARGV[1]
"#;

/// KEYS[1] = the room key. ARGV = node, key prefix, room name.
/// Frees the room if `node` still owns it; returns 1 if it did.
pub const RELEASE: &str = r#"
redis.call('SREM', ARGV[2] .. 'claims:' .. ARGV[1], ARGV[3])
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
for _, room in ipairs(redis.call('SMEMBERS', p .. 'claims:' .. node)) do
  if redis.call('GET', p .. 'room:' .. room) == node then
    redis.call('DEL', p .. 'room:' .. room)
    freed = freed + 1
  end
end
redis.call('DEL', p .. 'claims:' .. node, p .. 'node:' .. node, p .. 'rooms:' .. node)
redis.call('SREM', p .. 'nodes', node)
return freed
"#;
