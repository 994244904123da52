import { activated, ScriptedGateway, json } from "../harness";
import { fake } from "../fakeVscode";
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "..", "package.json"), "utf8"));
const gateway = new ScriptedGateway();
let url = "";
before(async () => (url = await gateway.start()));
after(() => gateway.stop());

test("activation registers every command the manifest contributes, with the spec's ids and titles", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  const contributed = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
  assert.deepEqual([...fake.commands.keys()].sort(), contributed);
  const titles = Object.fromEntries(manifest.contributes.commands.map((c: { command: string; title: string }) => [c.command, c.title]));
  assert.equal(titles["openhands.askOpenHands"], "Ask OpenHands");
  assert.equal(titles["openhands.invokeCodeAgent"], "Ask OpenHands Code Agent");
  extension.dispose();
  assert.deepEqual([...fake.commands.keys()], []);
});

test("the settings' defaults in the manifest are the ones the code falls back to, and no key is a setting", () => {
  const properties = manifest.contributes.configuration.properties;
  assert.equal(properties["openhands.api.baseUrl"].default, "http://localhost:8000");
  assert.deepEqual(properties["openhands.modelQuality"].enum, ["", "fastest", "balanced", "best_quality"]);
  assert.equal(properties["openhands.provider"].default, "");
  assert.deepEqual(
    Object.keys(properties).filter((name) => /key|secret|token/i.test(name)),
    [],
  );
});

test("the client key is kept in secret storage and sent as a bearer token, never in the settings", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  fake.inputs.push(" sk-llmagg-abc-def ");
  await extension.run("openhands.setApiKey");
  assert.equal(fake.inputBoxes[0].password, true);
  assert.deepEqual(extension.context.secretCalls, ["store openhands.apiKey"]);
  assert.equal(extension.context.secretValues.get("openhands.apiKey"), "sk-llmagg-abc-def");
  assert.equal(Object.values(fake.settings).includes("sk-llmagg-abc-def"), false);

  gateway.on("/v1/agents/code/invoke", json(200, { agent_status: "completed", thread_id: "t1", generated_code: "x" }));
  fake.inputs.push("Do it");
  await extension.run("openhands.invokeCodeAgent");
  assert.equal(gateway.requestsTo("/v1/agents/code/invoke")[0].headers.authorization, "Bearer sk-llmagg-abc-def");

  await extension.run("openhands.clearApiKey");
  assert.equal(extension.context.secretValues.has("openhands.apiKey"), false);
  extension.dispose();
});

test("the status bar shows the gateway's health and turns red when /health fails", async () => {
  gateway.on("/health", json(200, { status: "ok" }));
  const extension = activated({ "openhands.api.baseUrl": url });
  const [item] = fake.statusBarItems;
  assert.equal(await extension.run("openhands.checkHealth"), undefined);
  assert.equal(item.text, "$(check) OpenHands");
  assert.equal(item.command, "openhands.checkHealth");
  assert.equal(fake.notifications.at(-1)?.message, `OpenHands: the gateway at ${url} is healthy.`);

  gateway.on("/health", json(503, { error: { message: "no healthy upstream", type: "server_error", code: "unavailable" } }));
  await extension.run("openhands.checkHealth");
  assert.equal(item.text, "$(error) OpenHands");
  assert.equal(item.tooltip, "The gateway could not answer (unavailable): no healthy upstream");
  extension.dispose();
});

test("a gateway that does not answer shows as down in the status bar", async () => {
  const closed = await closedPort();
  const extension = activated({ "openhands.api.baseUrl": `http://127.0.0.1:${closed}` });
  await extension.run("openhands.checkHealth");
  assert.equal(fake.statusBarItems[0].text, "$(error) OpenHands");
  assert.match(fake.notifications.at(-1)?.message ?? "", new RegExp(`^OpenHands cannot reach the gateway at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
  extension.dispose();
});
