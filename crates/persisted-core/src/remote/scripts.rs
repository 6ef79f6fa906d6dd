//! The Lua scripts the Redis backend runs: each is atomic on the server, so
//! a commit is one round trip that either applies whole or not at all.
//!
//! Keys of a store with key prefix `P` (all in hash tag `{P}`, one slot):
//! `{P}:meta` (hash: `v` the version, `layout`, `kind:<field>` for fields
//! kept as native collections), `{P}:state` (hash: field -> JSON),
//! `{P}:c:<field>` (list or hash), `{P}:log` (stream: `v`, `cid`, `ts`,
//! `rec` per commit), `{P}:lease` (the writer lease, a token with a TTL).

/// Loads everything at once: `{0}` when the store does not exist, else
/// `{1, meta, state, natives, last_log_id}` with `natives` a list of
/// `{field, "list"|"hash", contents}`.
/// KEYS: meta, state, log. ARGV: the key prefix (`{P}`).
pub(super) const LOAD: &str = r#"
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {0} end
local state = redis.call('HGETALL', KEYS[2])
local natives = {}
for i = 1, #meta, 2 do
  local k = meta[i]
  if string.sub(k, 1, 5) == 'kind:' then
    local f = string.sub(k, 6)
    local key = ARGV[1] .. ':c:' .. f
    if meta[i + 1] == 'list' then
      table.insert(natives, {f, 'list', redis.call('LRANGE', key, 0, -1)})
    else
      table.insert(natives, {f, 'hash', redis.call('HGETALL', key)})
    end
  end
end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {1, meta, state, natives, id}
"#;

/// One commit: refuses with `{2, pttl}` while another handle holds the
/// lease, with `{0, v}` when the version is not the expected one (another
/// commit came first), with `{3, field, type}` when a field's native key
/// has another type than its operation needs (nothing written); otherwise
/// applies every operation, bumps the version, appends the record to the
/// log and returns `{1, v, log_id}`. Operation codes: `J` a field as JSON
/// (`JN` when it was a native collection), `L`/`H` a field as a native
/// list/hash, then `push` (many), `push_front`, `pop`, `pop_front`,
/// `clear`, `minsert`, `mremove` (maps), `sinsert`, `sremove` (sets).
/// KEYS: meta, state, log, lease. ARGV: prefix, expected version, commit
/// id, record, time (ms), lease token (or ''), release the lease ('1'),
/// trim kind ('MAXLEN', 'MINID' or ''), trim argument, operation count,
/// then per operation: code, field, argument count, arguments.
pub(super) const COMMIT: &str = r#"
local lease = redis.call('GET', KEYS[4])
if lease and lease ~= ARGV[6] then return {2, redis.call('PTTL', KEYS[4])} end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[2]) then return {0, v} end
local p = ARGV[1]
-- First check that every native key an operation touches has the type it
-- needs, so that no command below can fail halfway through the commit.
local want = {push = 'list', push_front = 'list', pop = 'list', pop_front = 'list',
  sinsert = 'list', sremove = 'list', minsert = 'hash', mremove = 'hash'}
local i = 11
for n = 1, tonumber(ARGV[10]) do
  local code, f, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local need = want[code]
  if need then
    local t = redis.call('TYPE', p .. ':c:' .. f)['ok']
    if t ~= 'none' and t ~= need then return {3, f, t} end
  end
  i = i + 3 + count
end
local function chunks(cmd, key, from, count)
  local j = from
  while j < from + count do
    local last = math.min(j + 999, from + count - 1)
    redis.call(cmd, key, unpack(ARGV, j, last))
    j = last + 1
  end
end
i = 11
for n = 1, tonumber(ARGV[10]) do
  local code, f, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local a = i + 3
  local key = p .. ':c:' .. f
  if code == 'J' then
    redis.call('HSET', KEYS[2], f, ARGV[a])
  elseif code == 'JN' then
    redis.call('DEL', key)
    redis.call('HDEL', KEYS[1], 'kind:' .. f)
    redis.call('HSET', KEYS[2], f, ARGV[a])
  elseif code == 'L' then
    redis.call('DEL', key)
    redis.call('HDEL', KEYS[2], f)
    redis.call('HSET', KEYS[1], 'kind:' .. f, 'list')
    chunks('RPUSH', key, a, count)
  elseif code == 'H' then
    redis.call('DEL', key)
    redis.call('HDEL', KEYS[2], f)
    redis.call('HSET', KEYS[1], 'kind:' .. f, 'hash')
    chunks('HSET', key, a, count)
  elseif code == 'push' then
    chunks('RPUSH', key, a, count)
  elseif code == 'push_front' then
    redis.call('LPUSH', key, ARGV[a])
  elseif code == 'pop' then
    redis.call('RPOP', key)
  elseif code == 'pop_front' then
    redis.call('LPOP', key)
  elseif code == 'clear' then
    redis.call('DEL', key)
  elseif code == 'minsert' then
    redis.call('HSET', key, ARGV[a], ARGV[a + 1])
  elseif code == 'mremove' then
    redis.call('HDEL', key, ARGV[a])
  elseif code == 'sinsert' then
    if not redis.call('LPOS', key, ARGV[a]) then redis.call('RPUSH', key, ARGV[a]) end
  elseif code == 'sremove' then
    redis.call('LREM', key, 1, ARGV[a])
  end
  i = a + count
end
if v == 0 then redis.call('HSET', KEYS[1], 'layout', '1') end
v = v + 1
redis.call('HSET', KEYS[1], 'v', v)
local id
if ARGV[8] == '' then
  id = redis.call('XADD', KEYS[3], '*', 'v', v, 'cid', ARGV[3], 'ts', ARGV[5], 'rec', ARGV[4])
else
  id = redis.call('XADD', KEYS[3], ARGV[8], '~', ARGV[9], '*', 'v', v, 'cid', ARGV[3], 'ts',
    ARGV[5], 'rec', ARGV[4])
end
if ARGV[7] == '1' then redis.call('DEL', KEYS[4]) end
return {1, v, id}
"#;

/// Takes (or renews) the lease for `ttl` ms and returns what a writer needs
/// to catch up: `{1, v, entries after last_id}`; `{0, pttl}` while another
/// handle holds it.
/// KEYS: meta, log, lease. ARGV: token, ttl ms, last log id seen.
pub(super) const LOCK: &str = r#"
local ok = redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok then
  if redis.call('GET', KEYS[3]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  else
    return {0, redis.call('PTTL', KEYS[3])}
  end
end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
return {1, v, redis.call('XRANGE', KEYS[2], '(' .. ARGV[3], '+', 'COUNT', 1000)}
"#;

/// Gives the lease up if this token still holds it.
/// KEYS: lease. ARGV: token.
pub(super) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;
