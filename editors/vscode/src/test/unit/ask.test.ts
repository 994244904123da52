import { activated, json, ScriptedGateway, sse } from "../harness";
import { fake, Selection } from "../fakeVscode";
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";

const gateway = new ScriptedGateway();
let url = "";
before(async () => (url = await gateway.start()));
after(() => gateway.stop());

test("Ask sends the prompt, the selection and the bounded active file, and streams the answer beside", async () => {
  const extension = activated({
    "openhands.api.baseUrl": url,
    "openhands.modelQuality": "fastest",
    "openhands.provider": "groq",
    "openhands.ask.maxActiveFileChars": 10,
  });
  fake.openFolder("/work/app");
  fake.openEditor("/work/app/src/calc.py", "def add(a, b):\n    return a + b\n", "python", new Selection(0, 4, 0, 7));
  gateway.on("/v1/contextual_chat/completions", sse(["It ", "adds ", "numbers."]));
  fake.inputs.push("What does this do?");
  await extension.run("openhands.askOpenHands");
  const [sent] = gateway.requestsTo("/v1/contextual_chat/completions");
  assert.deepEqual(sent.body, {
    prompt: "What does this do?",
    model: "auto",
    model_quality: "fastest",
    provider: "groq",
    selected_text: "add",
    active_file_content: "def add(a,",
    active_file_name: "src/calc.py",
    language: "python",
    stream: true,
  });
  assert.deepEqual(fake.untitledTexts, ["## What does this do?\n\nIt adds numbers."]);
  const [shown] = fake.shown;
  assert.equal(shown.document.languageId, "markdown");
  assert.deepEqual(shown.options, { viewColumn: -2, preserveFocus: true, preview: false });
  extension.dispose();
});

test("cancelling the progress notification stops the stream and says so in the document", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  let hang: (() => void) | undefined;
  gateway.on("/v1/contextual_chat/completions", (_request, response) => {
    response.writeHead(200, { "Content-Type": "text/event-stream" });
    response.write(`data: ${JSON.stringify({ choices: [{ delta: { content: "First part" } }] })}\n\n`);
    hang = () => response.end();
  });
  fake.onProgress = (source) => {
    // Cancel as soon as the first piece reached the document.
    const timer = setInterval(() => {
      if (fake.untitledTexts[0]?.endsWith("First part")) {
        clearInterval(timer);
        source.cancel();
      }
    }, 5);
  };
  fake.inputs.push("Explain");
  await extension.run("openhands.askOpenHands");
  hang?.();
  assert.deepEqual(fake.untitledTexts, ["## Explain\n\nFirst part\n\n_(Cancelled.)_\n"]);
  assert.deepEqual(fake.notifications, []);
  extension.dispose();
});

test("an empty prompt sends nothing", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  const before = gateway.received.length;
  fake.inputs.push("   ");
  await extension.run("openhands.askOpenHands");
  assert.equal(gateway.received.length, before);
  extension.dispose();
});

test("a refused ask opens no document and shows the gateway's error", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  gateway.on(
    "/v1/contextual_chat/completions",
    json(401, { error: { message: "Invalid API key", type: "invalid_request_error", code: "invalid_api_key" } }),
  );
  fake.inputs.push("Hi");
  await extension.run("openhands.askOpenHands");
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(fake.untitledTexts, []);
  assert.deepEqual(fake.notifications.map((n) => [n.severity, n.items]), [["error", ["Set API Key"]]]);
  extension.dispose();
});
