// The extension's entry point: its commands and the status bar item.

import * as vscode from "vscode";
import { askOpenHands } from "./ask";
import { invokeCodeAgent, newAgentThread } from "./codeAgent";
import { clearApiKey, setApiKey } from "./settings";
import { HealthStatus } from "./statusBar";

export function activate(context: vscode.ExtensionContext): { health: HealthStatus } {
  const health = new HealthStatus();
  context.subscriptions.push(
    health,
    vscode.commands.registerCommand("openhands.askOpenHands", () => askOpenHands(context)),
    vscode.commands.registerCommand("openhands.invokeCodeAgent", () => invokeCodeAgent(context)),
    vscode.commands.registerCommand("openhands.setApiKey", () => setApiKey(context)),
    vscode.commands.registerCommand("openhands.clearApiKey", () => clearApiKey(context)),
    vscode.commands.registerCommand("openhands.newAgentThread", () => newAgentThread(context)),
    vscode.commands.registerCommand("openhands.checkHealth", () => health.checkAndReport()),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (change.affectsConfiguration("openhands")) {
        void health.start();
      }
    }),
  );
  void health.start();
  return { health };
}

export function deactivate(): void {}
