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
  elseif code == 'E' then
    redis.call('HSET', KEYS[1], 'enc', ARGV[a])
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
-- The lease (ARGV[7]): '0' leave it, '1' give it up, 'keep:<ms>' keep
-- it <ms> longer unless someone waits for it (lock.lua marks KEYS[6]).
local hold = ARGV[7]
if hold == '0' then return {1, v, id, 0} end
-- The lease is not data (see lock.lua).
redis.set_repl(redis.REPL_NONE)
if hold ~= '1' and ARGV[6] ~= '' and redis.call('EXISTS', KEYS[6]) == 0 then
  redis.call('SET', KEYS[4], ARGV[6], 'PX', string.sub(hold, 6))
  return {1, v, id, 1}
end
-- Give it up and wake one waiter.
redis.call('DEL', KEYS[4])
redis.call('LPUSH', KEYS[5], '1')
redis.call('LTRIM', KEYS[5], 0, 0)
return {1, v, id, 0}
