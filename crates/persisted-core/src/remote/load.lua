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
