// Shows a failed call as a notification whose buttons do what it says to do.

import * as vscode from "vscode";
import { describeError } from "./errors";
import { Cancelled } from "./gateway";

export async function notifyError(problem: unknown, retry?: () => unknown): Promise<void> {
  if (problem instanceof Cancelled) {
    return;
  }
  const notice = describeError(problem);
  const actions = notice.actions.filter((action) => action.id !== "retry" || retry !== undefined);
  const titles = actions.map((action) => action.title);
  const picked =
    notice.severity === "warning"
      ? await vscode.window.showWarningMessage(notice.message, ...titles)
      : await vscode.window.showErrorMessage(notice.message, ...titles);
  switch (actions.find((action) => action.title === picked)?.id) {
    case "setApiKey":
      await vscode.commands.executeCommand("openhands.setApiKey");
      break;
    case "openSettings":
      await vscode.commands.executeCommand("workbench.action.openSettings", "openhands");
      break;
    case "newThread":
      await vscode.commands.executeCommand("openhands.newAgentThread");
      break;
    case "retry":
      await retry?.();
      break;
  }
}
