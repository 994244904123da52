// The extension's command handlers on the `vscode` stand-in against a REAL gateway:
//   node out/test/integration/run.js <scenario>
// with OPENHANDS_GATEWAY_URL, OPENHANDS_API_KEY and (for the agent) OPENHANDS_WORKSPACE, a folder the key
// is granted. tests/e2e/test_vscode_extension.py starts the stack, scripts the simulated model and runs
// each scenario; this prints what the editor showed as one JSON object on stdout, and fails (exit 1) on
// the first expectation it does not meet.

import { activated } from "../harness";
import { fake, Selection } from "../fakeVscode";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

/** The extension activated on the stand-in with these settings, its key set through its own command. */
async function extension(settings: Record<string, unknown> = {}, key = env("OPENHANDS_API_KEY")) {
  const activatedExtension = activated({ "openhands.api.baseUrl": env("OPENHANDS_GATEWAY_URL"), ...settings });
  fake.inputs.push(key);
  await activatedExtension.run("openhands.setApiKey");
  fake.notifications.length = 0;
  fake.inputBoxes.length = 0;
  return activatedExtension;
}

function seen() {
  return {
    documents: fake.untitledTexts,
    notifications: fake.notifications,
    inputBoxes: fake.inputBoxes.map((box) => ({ title: box.title, prompt: box.prompt })),
    opened: fake.shown.filter((s) => !s.document.isUntitled).map((s) => s.document.uri.fsPath),
    appends: fake.applied,
    statusBar: fake.statusBarItems[0]?.text,
  };
}

const scenarios: Record<string, () => Promise<unknown>> = {
  /** Health in the status bar, then a streamed ask with the selection and the active file. */
  async ask() {
    const openhands = await extension({ "openhands.provider": "agent-sim", "openhands.modelQuality": "balanced" });
    await openhands.run("openhands.checkHealth");
    assert.equal(fake.statusBarItems[0].text, "$(check) OpenHands");
    const folder = env("OPENHANDS_WORKSPACE");
    fake.openFolder(folder);
    const text = "import os\n\ndef add(a, b):\n    return a + b\n";
    fake.openEditor(path.join(folder, "calc.py"), text, "python", new Selection(2, 0, 3, 16));
    fake.notifications.length = 0;
    fake.inputs.push("echo: Explain this code");
    await openhands.run("openhands.askOpenHands");
    assert.deepEqual(fake.notifications, []);
    const result = seen();
    openhands.dispose();
    return result;
  },

  /** An instruction for the agent on the workspace: it writes a file and answers with code. */
  async agent() {
    const openhands = await extension();
    const folder = env("OPENHANDS_WORKSPACE");
    fake.openFolder(folder);
    const editor = fake.openEditor(path.join(folder, "main.py"), fs.readFileSync(path.join(folder, "main.py"), "utf8"), "python");
    editor.selection = new Selection(1, 0, 1, 0);
    fake.inputs.push(...(process.env.OPENHANDS_ANSWERS ? JSON.parse(process.env.OPENHANDS_ANSWERS) : ["Create importer.py"]));
    await openhands.run("openhands.invokeCodeAgent");
    const result = { ...seen(), editor: editor.document.text, threadId: openhands.context.workspaceState.get("openhands.agent.threadId") };
    openhands.dispose();
    return result;
  },

  /** An ask the gateway refuses (OPENHANDS_ANSWERS: [a key to use instead]): the notice it becomes. */
  async "refused-ask"() {
    const [key] = process.env.OPENHANDS_ANSWERS ? JSON.parse(process.env.OPENHANDS_ANSWERS) : [env("OPENHANDS_API_KEY")];
    const openhands = await extension({}, key);
    fake.inputs.push("echo: hi");
    await openhands.run("openhands.askOpenHands");
    await new Promise((resolve) => setImmediate(resolve));
    const result = seen();
    openhands.dispose();
    return result;
  },
};

async function main(): Promise<void> {
  const scenario = scenarios[process.argv[2]];
  if (!scenario) {
    throw new Error(`usage: run.js ${Object.keys(scenarios).join("|")}`);
  }
  process.stdout.write(JSON.stringify(await scenario()) + "\n");
}

main().catch((problem) => {
  console.error(problem);
  process.exit(1);
});
