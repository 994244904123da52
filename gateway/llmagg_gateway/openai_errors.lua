-- Turns gRPC errors from the services into OpenAI-shaped REST errors and drops gRPC-only headers.
-- Services put the OpenAI error JSON in the `x-openai-error` trailer (and, where the HTTP status the
-- gRPC code maps to is not the right one, the status in `x-http-status`); the transcoder hands
-- trailers of an error response to us as headers. An error a service did not shape (a call cut at
-- shutdown, a message over gRPC's limits) still gets an OpenAI body. Native gRPC clients get the gRPC
-- response untouched, but for the message of a reply Envoy makes itself (an ext_authz denial, no
-- upstream): their grpc-message is the error's message, not the REST error's JSON.
-- The transcoder's own failures (a body or query it cannot map to the request message) come as
-- Envoy local replies whose code local_replies.py sets to the response code details
-- (`grpc_json_transcode_failure{...}`); they are rewritten here into precise OpenAI errors.

-- gRPC status code -> HTTP status, OpenAI error type and code, for errors without an OpenAI body.
local UNSHAPED = {
  ["1"] = {"503", "service_unavailable_error", "upstream_cancelled"},
  ["4"] = {"504", "timeout_error", "upstream_deadline_exceeded"},
  ["8"] = {"413", "invalid_request_error", "request_too_large"},
  ["12"] = {"404", "invalid_request_error", "unknown_url"},
  ["14"] = {"503", "service_unavailable_error", "upstream_unavailable"},
}

-- What a protobuf scalar type asks for, in a client's words.
local INTEGER, NUMBER = "an integer", "a number"
local EXPECTED = {
  INT32 = INTEGER, INT64 = INTEGER, UINT32 = INTEGER, UINT64 = INTEGER, SINT32 = INTEGER,
  SINT64 = INTEGER, FIXED32 = INTEGER, FIXED64 = INTEGER, SFIXED32 = INTEGER, SFIXED64 = INTEGER,
  DOUBLE = NUMBER, FLOAT = NUMBER, STRING = "a string", BOOL = "true or false", BYTES = "base64 text",
  ENUM = "one of its allowed values",
}
local FIELD = "[%w_%.%[%]]"

-- `message` is JSON-escaped already; `param` is a field path (no quote can be in it).
local function invalid_request(message, code, param)
  local param_json = "null"
  if param ~= nil and param ~= "" then
    param_json = '"' .. param .. '"'
  end
  return '{"error":{"message":"' .. message .. '","type":"invalid_request_error","param":' .. param_json
    .. ',"code":"' .. code .. '"}}'
end

-- The transcoder's words (JSON-escaped, as the local reply carries them) as an OpenAI error.
local function transcode_failure(detail)
  if detail == ": Root element must be a message." then
    return invalid_request("The request body must be a JSON object.", "invalid_body")
  end
  local field, value, type_name = string.match(detail, "^(" .. FIELD .. "+): invalid value (.-) for type TYPE_(%u+%d*)$")
  if field ~= nil and EXPECTED[type_name] ~= nil then
    return invalid_request("Invalid type for `" .. field .. "`: expected " .. EXPECTED[type_name] .. ", got "
      .. value .. ".", "invalid_type", field)
  end
  field = string.match(detail, "^(" .. FIELD .. "*): ")
  if field == nil then
    -- Not about a field: the JSON itself is broken. Its first line says where (the rest quotes the body).
    local first_line = string.match(detail, "^(.-)\\n") or detail
    return invalid_request("We could not parse the JSON body of your request (" .. first_line
      .. "). The body must be a JSON object.", "invalid_json")
  end
  return invalid_request("The request does not fit this route: " .. detail, "invalid_request", field)
end

-- A JSON string's escapes as a grpc-message wants them (percent-encoded where not printable).
local GRPC_ESCAPES = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "%08", f = "%0C", n = "%0A", r = "%0D", t = "%09"}

local function plain_grpc_message(headers)
  local message = headers:get("grpc-message")
  if message == nil or string.sub(message, 1, 10) ~= '{"error":{' then
    return
  end
  local text = string.match(message, '"message":"(.-)","')
  if text ~= nil then
    headers:replace("grpc-message", (string.gsub(text, "\\(.)", function(c)
      return GRPC_ESCAPES[c] or ("\\" .. c)
    end)))
  end
end

local function json_string(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function envoy_on_request(request_handle)
  local content_type = request_handle:headers():get("content-type") or ""
  if string.sub(content_type, 1, 16) == "application/grpc" then
    request_handle:streamInfo():dynamicMetadata():set("llmagg.gateway", "grpc_client", "true")
  end
end

function envoy_on_response(response_handle)
  local metadata = response_handle:streamInfo():dynamicMetadata():get("llmagg.gateway")
  local headers = response_handle:headers()
  -- A key refused inside Envoy (basic_auth) is a bearer key's 401, not a browser's login prompt.
  headers:remove("www-authenticate")
  if metadata ~= nil and metadata["grpc_client"] == "true" then
    plain_grpc_message(headers)
    return
  end
  if headers:get(":status") == "400" and headers:get("grpc-status") == nil and headers:get("x-openai-error") == nil then
    -- Envoy's own 400 (local_replies.py's body): the transcoder's is made precise.
    local body = response_handle:body(true)
    local text = body:getBytes(0, body:length())
    local detail = string.match(text, '^{"error":{"code":"[%w_]*grpc_json_transcode_failure{[%u_]*}","message":"(.-)","param":')
    if detail ~= nil then
      body:setBytes(transcode_failure(detail))
    end
    return
  end
  -- gRPC plumbing means nothing to a REST client.
  headers:remove("grpc-accept-encoding")
  headers:remove("grpc-encoding")
  headers:remove("x-llmagg-retry-elsewhere")
  local openai_error = headers:get("x-openai-error")
  local grpc_status = headers:get("grpc-status")
  if openai_error == nil then
    if grpc_status == "0" then
      headers:remove("grpc-status")
      headers:remove("grpc-message")
    end
    if grpc_status == nil or grpc_status == "0" then
      return
    end
    local shape = UNSHAPED[grpc_status] or {"500", "server_error", "internal_error"}
    headers:replace(":status", shape[1])
    if shape[1] == "503" then
      headers:replace("retry-after", "1")
    end
    local message = headers:get("grpc-message") or "The server could not complete the request."
    openai_error = '{"error":{"message":' .. json_string(message) .. ',"type":"' .. shape[2]
      .. '","param":null,"code":"' .. shape[3] .. '"}}'
  end
  local http_status = headers:get("x-http-status")
  if http_status ~= nil then
    headers:replace(":status", http_status)
  end
  -- Headers must be changed before body() is called.
  headers:remove("x-openai-error")
  headers:remove("x-http-status")
  headers:remove("grpc-status-details-bin")
  headers:remove("grpc-message")
  headers:remove("grpc-status")
  headers:replace("content-type", "application/json")
  response_handle:body(true):setBytes(openai_error)
end
