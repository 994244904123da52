-- Turns gRPC errors from the services into OpenAI-shaped REST errors and drops gRPC-only headers.
-- Services put the OpenAI error JSON in the `x-openai-error` trailer; the transcoder hands trailers
-- of an error response to us as headers. Native gRPC clients get the gRPC response untouched.

function envoy_on_request(request_handle)
  local content_type = request_handle:headers():get("content-type") or ""
  if string.sub(content_type, 1, 16) == "application/grpc" then
    request_handle:streamInfo():dynamicMetadata():set("llmagg.gateway", "grpc_client", "true")
  end
end

function envoy_on_response(response_handle)
  local metadata = response_handle:streamInfo():dynamicMetadata():get("llmagg.gateway")
  if metadata ~= nil and metadata["grpc_client"] == "true" then
    return
  end
  local headers = response_handle:headers()
  -- gRPC plumbing means nothing to a REST client.
  headers:remove("grpc-accept-encoding")
  headers:remove("grpc-encoding")
  local openai_error = headers:get("x-openai-error")
  if openai_error == nil then
    return
  end
  -- Headers must be changed before body() is called.
  headers:remove("x-openai-error")
  headers:remove("grpc-status-details-bin")
  headers:remove("grpc-message")
  headers:remove("grpc-status")
  headers:replace("content-type", "application/json")
  response_handle:body(true):setBytes(openai_error)
end
