-- Task records (JSON that trigger_celery._store.dumps wrote): a function prepended to the
-- scripts that read a record's fields (trigger_celery/_store.py, _SCRIPT_LIBS).
-- cjson refuses the escape of a lone surrogate (Python writes one for text that JSON decoded
-- from one): decode a copy where any \uD800-\uDFFF escape is a '?'.
local function decode_record(raw)
  return cjson.decode((string.gsub(raw, '\\u[dD][89a-fA-F]%x%x', '\\u003f')))
end
