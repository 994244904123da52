import { activated, json, Reply, ScriptedGateway } from "../harness";
import { fake, Selection } from "../fakeVscode";
import { PENDING_KEY, THREAD_KEY } from "../../codeAgent";
import { writtenFiles } from "../../agentRun";
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const gateway = new ScriptedGateway();
let url = "";
before(async () => (url = await gateway.start()));
after(() => gateway.stop());

const INVOKE = "/v1/agents/code/invoke";
const RESUME = "/v1/agents/resume";

/** An agent answer on the thread the request named, as the gateway gives it. */
function agent(fields: Record<string, unknown>): Reply {
  return (request, response) => {
    const threadId = (request.body as { thread_id: string }).thread_id;
    json(200, { thread_id: threadId, ...fields })(request, response);
  };
}

function completed(fields: Record<string, unknown> = {}) {
  return agent({ agent_status: "completed", model_used: "sim/small", ...fields });
}

function asks(toolCallId: string, question: string) {
  return agent({
    agent_status: "requires_human_input",
    human_input_request: { tool_call_id: toolCallId, question_for_human: question },
  });
}

function workspace(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "openhands-unit-"));
  fake.openFolder(folder);
  return folder;
}

test("the code agent gets the instruction, the selection as context, the language and the workspace root", async () => {
  const extension = activated({ "openhands.api.baseUrl": url, "openhands.modelQuality": "best_quality" });
  const folder = workspace();
  const editor = fake.openEditor(path.join(folder, "a.py"), "x = 1\ny = 2\n", "python", new Selection(1, 0, 1, 5));
  gateway.on(INVOKE, completed({ generated_code: "y = 3", explanation: "Sets y to 3." }));
  fake.inputs.push("Make y three");
  await extension.run("openhands.invokeCodeAgent");
  const [sent] = gateway.requestsTo(INVOKE);
  const threadId = extension.context.workspaceState.get<string>(THREAD_KEY);
  assert.match(threadId ?? "", /^thread_vscode_[0-9a-f]{20}$/);
  assert.deepEqual(sent.body, {
    instruction: "Make y three",
    thread_id: threadId,
    context: "y = 2",
    language: "python",
    project_directory: folder,
    model_quality: "best_quality",
  });
  assert.equal(editor.document.text, "x = 1\ny = 3\n"); // the selection replaced
  assert.deepEqual(fake.untitledTexts, [`## Make y three\n\nSets y to 3.\n\n_sim/small, thread ${threadId}_\n`]);
  extension.dispose();
});

test("without a selection the code goes in at the cursor, and a follow-up continues the same thread", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  workspace();
  const editor = fake.openEditor(path.join(fake.workspaceFolders![0].uri.fsPath, "b.js"), "ab", "javascript", new Selection(0, 1, 0, 1));
  gateway.on(INVOKE, completed({ generated_code: "XY" }), completed({ generated_code: "Z" }));
  fake.inputs.push("first", "second");
  await extension.run("openhands.invokeCodeAgent");
  assert.equal(editor.document.text, "aXYb");
  await extension.run("openhands.invokeCodeAgent");
  const [first, second] = gateway.requestsTo(INVOKE).slice(-2).map((r) => r.body as Record<string, unknown>);
  assert.equal(first.context, undefined);
  assert.equal(second.thread_id, first.thread_id);
  await extension.run("openhands.newAgentThread");
  assert.equal(extension.context.workspaceState.get(THREAD_KEY), undefined);
  extension.dispose();
});

test("the agent's questions are asked in an input box and answered with resume until it completes", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  workspace();
  const editor = fake.openEditor(path.join(fake.workspaceFolders![0].uri.fsPath, "c.py"), "", "python");
  gateway.on(INVOKE, asks("q1", "Overwrite config.py?"));
  gateway.on(RESUME, asks("q2", "Keep the comments?"), completed({ generated_code: "done()" }));
  fake.inputs.push("Refactor", "Yes", "No");
  await extension.run("openhands.invokeCodeAgent");
  const threadId = extension.context.workspaceState.get<string>(THREAD_KEY);
  assert.deepEqual(
    gateway.requestsTo(RESUME).map((r) => r.body),
    [
      { thread_id: threadId, tool_call_id: "q1", human_response: "Yes" },
      { thread_id: threadId, tool_call_id: "q2", human_response: "No" },
    ],
  );
  assert.deepEqual(
    fake.inputBoxes.slice(1).map((box) => [box.title, box.prompt]),
    [
      ["OpenHands Code Agent asks", "Overwrite config.py?"],
      ["OpenHands Code Agent asks", "Keep the comments?"],
    ],
  );
  assert.equal(editor.document.text, "done()");
  assert.equal(extension.context.workspaceState.get(PENDING_KEY), undefined);
  extension.dispose();
});

test("a question left unanswered is kept, and the next run answers it instead of a new instruction", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  workspace();
  gateway.on(INVOKE, asks("q9", "Which name?"));
  fake.inputs.push("Name it", undefined);
  await extension.run("openhands.invokeCodeAgent");
  const threadId = extension.context.workspaceState.get<string>(THREAD_KEY);
  assert.deepEqual(extension.context.workspaceState.get(PENDING_KEY), { threadId, toolCallId: "q9", question: "Which name?" });
  assert.match(fake.notifications.at(-1)?.message ?? "", /waits for your answer to "Which name\?"/);

  const invokes = gateway.requestsTo(INVOKE).length;
  gateway.on(RESUME, completed({ explanation: "Named." }));
  fake.inputs.push("foo");
  await extension.run("openhands.invokeCodeAgent");
  assert.equal(gateway.requestsTo(INVOKE).length, invokes);
  assert.deepEqual(gateway.requestsTo(RESUME).at(-1)?.body, { thread_id: threadId, tool_call_id: "q9", human_response: "foo" });
  assert.equal(fake.inputBoxes.at(-1)?.prompt, "Which name?");
  assert.equal(extension.context.workspaceState.get(PENDING_KEY), undefined);
  extension.dispose();
});

test("the files the agent wrote are listed and opened; refused writes are not", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  const folder = workspace();
  fs.mkdirSync(path.join(folder, "src"));
  fs.writeFileSync(path.join(folder, "src", "new.py"), "print(1)\n");
  gateway.on(INVOKE, completed({ explanation: "Wrote it." }));
  const messages = [
    { role: "user", content: "old" },
    {
      role: "assistant",
      tool_calls: [
        { id: "w1", function: { name: "write_file", arguments: JSON.stringify({ filepath: "src/new.py", content: "print(1)\n" }) } },
        { id: "w2", function: { name: "write_file", arguments: JSON.stringify({ filepath: "../out.py", content: "" }) } },
      ],
    },
    { role: "tool", tool_call_id: "w1", name: "write_file", content: "Created src/new.py (9 bytes)." },
    { role: "tool", tool_call_id: "w2", name: "write_file", content: "Error: paths must stay inside the project" },
  ];
  fake.inputs.push("Write it");
  // The thread before the run (one message), then after it.
  const threadPath = () => `/v1/agents/threads/${extension.context.workspaceState.get<string>(THREAD_KEY)}`;
  fake.onProgress = () => {
    gateway.on(threadPath(), json(200, { thread_id: "t", agent_status: "completed", messages: messages.slice(0, 1) }));
    gateway.on(threadPath(), json(200, { thread_id: "t", agent_status: "completed", messages }));
  };
  await extension.run("openhands.invokeCodeAgent");
  assert.deepEqual(writtenFiles(messages), ["src/new.py"]);
  assert.match(fake.untitledTexts[0], /\*\*Files written:\*\* `src\/new.py`/);
  const opened = fake.shown.filter((s) => !s.document.isUntitled);
  assert.deepEqual(
    opened.map((s) => [s.document.uri.fsPath, s.options]),
    [[path.join(folder, "src", "new.py"), { preview: false, preserveFocus: true }]],
  );
  extension.dispose();
});

test("a run that errors says why and offers a new thread", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  workspace();
  gateway.on(INVOKE, json(200, { agent_status: "error", thread_id: "t", error_details: "the step limit (25) was reached" }));
  fake.inputs.push("Loop");
  fake.choose = (n) => n.items[0];
  await extension.run("openhands.invokeCodeAgent");
  assert.deepEqual(fake.notifications[0], {
    severity: "error",
    message: "OpenHands: the code agent stopped: the step limit (25) was reached",
    items: ["Start a New Thread"],
  });
  assert.equal(extension.context.workspaceState.get(THREAD_KEY), undefined);
  extension.dispose();
});

test("without an open editor the generated code opens in a new document", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  gateway.on(INVOKE, completed({ generated_code: "print('hi')" }));
  fake.inputs.push("Say hi");
  await extension.run("openhands.invokeCodeAgent");
  const [sent] = gateway.requestsTo(INVOKE).slice(-1);
  assert.equal((sent.body as Record<string, unknown>).project_directory, undefined);
  assert.deepEqual(fake.untitledTexts, ["print('hi')"]);
  extension.dispose();
});

test("cancelling the progress notification stops waiting for the run and says where its result goes", async () => {
  const extension = activated({ "openhands.api.baseUrl": url });
  workspace();
  let release: (() => void) | undefined;
  gateway.on(INVOKE, (_request, response) => {
    release = () => response.end();
  });
  fake.onProgress = (source) => {
    const timer = setInterval(() => {
      if (gateway.requestsTo(INVOKE).length > 0 && release) {
        clearInterval(timer);
        source.cancel();
      }
    }, 5);
  };
  const before = gateway.requestsTo(INVOKE).length;
  fake.inputs.push("Take long");
  await extension.run("openhands.invokeCodeAgent");
  release?.();
  assert.equal(gateway.requestsTo(INVOKE).length, before + 1);
  assert.deepEqual(fake.notifications, [
    {
      severity: "information",
      message:
        "OpenHands: stopped waiting. The agent may still finish this run on the gateway; its thread keeps the result.",
      items: [],
    },
  ]);
  assert.deepEqual(fake.untitledTexts, []);
  extension.dispose();
});
