import { activated, json, ScriptedGateway } from "../harness";
import { fake } from "../fakeVscode";
import { describeError } from "../../errors";
import { GatewayError, GatewayUnreachable } from "../../gateway";
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";

const gateway = new ScriptedGateway();
let url = "";
before(async () => (url = await gateway.start()));
after(() => gateway.stop());

function error(status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return json(status, { error: { message, type: "error", param: null, code } }, headers);
}

test("a 401 says to set the key, and its button runs the command that does", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  gateway.on("/v1/agents/code/invoke", error(401, "missing_api_key", "You didn't provide an API key."));
  fake.inputs.push("Do it", "sk-llmagg-new-key");
  fake.choose = (n) => (n.items.includes("Set API Key") ? "Set API Key" : undefined);
  await extension.run("openhands.invokeCodeAgent");
  assert.deepEqual(fake.notifications[0], {
    severity: "error",
    message:
      'OpenHands has no client API key for the gateway. Set one with "OpenHands: Set Client API Key" ' +
      "(`llmagg keys create --name me` makes one).",
    items: ["Set API Key"],
  });
  assert.ok(fake.executed.some((e) => e.command === "openhands.setApiKey"));
  assert.equal(extension.context.secretValues.get("openhands.apiKey"), "sk-llmagg-new-key");
  extension.dispose();
});

test("a 429 says when to try again (Retry-After) and Retry sends the request again", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  gateway.on(
    "/v1/agents/code/invoke",
    error(429, "rate_limit_exceeded", "Every account is rate limited.", { "Retry-After": "7" }),
    json(200, { agent_status: "completed", thread_id: "t", generated_code: "ok" }),
  );
  fake.inputs.push("Do it");
  let first = true;
  fake.choose = (n) => (first && n.items.includes("Retry") ? ((first = false), "Retry") : undefined);
  const before = gateway.requestsTo("/v1/agents/code/invoke").length;
  await extension.run("openhands.invokeCodeAgent");
  assert.deepEqual(fake.notifications[0], {
    severity: "warning",
    message: "The gateway is rate limiting OpenHands (rate_limit_exceeded): Every account is rate limited. Try again in 7 seconds.",
    items: ["Retry"],
  });
  const sent = gateway.requestsTo("/v1/agents/code/invoke").slice(before);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[0].body, sent[1].body);
  extension.dispose();
});

test("503 no_accounts_configured passes on how to add an account", () => {
  const notice = describeError(
    new GatewayError("No provider account is configured. Add one with `llmagg accounts add`.", 503, "no_accounts_configured"),
  );
  assert.deepEqual(notice, {
    message:
      "The gateway has no provider account to answer with. No provider account is configured. Add one with `llmagg accounts add`.",
    actions: [{ id: "retry", title: "Retry" }],
    severity: "error",
  });
});

test("each refusal maps to its notice and action", () => {
  const cases: [unknown, string, string[]][] = [
    [new GatewayUnreachable("http://localhost:8000", "ECONNREFUSED"), "error", ["openSettings", "retry"]],
    [new GatewayError("Invalid API key", 401, "invalid_api_key"), "error", ["setApiKey"]],
    [new GatewayError("not granted", 403, "project_directory_not_allowed"), "error", []],
    [new GatewayError("waiting", 409, "thread_waiting_for_human"), "error", ["newThread"]],
    [new GatewayError("gone", 404, "thread_not_found"), "error", ["newThread"]],
    [new GatewayError("not waiting", 409, "thread_not_waiting"), "error", ["newThread"]],
    [new GatewayError("busy", 503, "server_busy", 2), "warning", ["retry"]],
    [new GatewayError("bad", 400, "invalid_value"), "error", []],
  ];
  for (const [problem, severity, actions] of cases) {
    const notice = describeError(problem);
    assert.deepEqual([notice.severity, notice.actions.map((a) => a.id)], [severity, actions], String(problem));
  }
  assert.equal(
    describeError(new GatewayError("not granted", 403, "project_directory_not_allowed")).message,
    "not granted The gateway's operator grants folders to keys in AGENT_WORKSPACE_ROOTS.",
  );
  assert.equal(
    describeError(new GatewayError("The router is busy.", 503, "server_busy", 2)).message,
    "The gateway could not answer (server_busy): The router is busy. Try again in 2 seconds.",
  );
});
