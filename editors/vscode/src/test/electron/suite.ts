// Runs inside VS Code (see runTest.ts): the extension activates, its commands exist, its settings have
// their defaults and the client key is no setting.

import * as assert from "node:assert/strict";
import * as vscode from "vscode";

export async function run(): Promise<void> {
  const extension = vscode.extensions.getExtension("llm-aggregator.openhands-ai-assistant");
  assert.ok(extension, "the extension is installed in the development host");
  await extension.activate();
  const commands = await vscode.commands.getCommands(true);
  for (const id of [
    "openhands.askOpenHands",
    "openhands.invokeCodeAgent",
    "openhands.setApiKey",
    "openhands.clearApiKey",
    "openhands.newAgentThread",
    "openhands.checkHealth",
  ]) {
    assert.ok(commands.includes(id), `${id} is registered`);
  }
  const settings = vscode.workspace.getConfiguration("openhands");
  assert.equal(settings.get("api.baseUrl"), "http://localhost:8000");
  assert.equal(settings.get("apiKey"), undefined);
}
