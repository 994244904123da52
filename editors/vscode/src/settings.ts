// The extension's settings and its client key. The key lives in VS Code's SecretStorage, never in settings.json.

import * as vscode from "vscode";
import { GatewayClient } from "./gateway";

export const API_KEY_SECRET = "openhands.apiKey";
export const DEFAULT_BASE_URL = "http://localhost:8000";

export interface Settings {
  baseUrl: string;
  modelQuality?: string;
  provider?: string;
  askModel: string;
  maxActiveFileChars: number;
  healthIntervalSeconds: number;
}

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration("openhands");
  return {
    baseUrl: config.get<string>("api.baseUrl", DEFAULT_BASE_URL) || DEFAULT_BASE_URL,
    modelQuality: config.get<string>("modelQuality", "") || undefined,
    provider: config.get<string>("provider", "").trim() || undefined,
    askModel: config.get<string>("ask.model", "auto").trim() || "auto",
    maxActiveFileChars: Math.max(0, config.get<number>("ask.maxActiveFileChars", 20000)),
    healthIntervalSeconds: Math.max(0, config.get<number>("healthIntervalSeconds", 30)),
  };
}

/** A client of the configured gateway with the stored key. */
export async function gatewayClient(context: vscode.ExtensionContext): Promise<GatewayClient> {
  return new GatewayClient(readSettings().baseUrl, await context.secrets.get(API_KEY_SECRET));
}

export async function setApiKey(context: vscode.ExtensionContext): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: "OpenHands: client API key",
    prompt: "The gateway's client key (`llmagg keys create --name me` makes one). Kept in VS Code's secret storage.",
    placeHolder: "sk-llmagg-...",
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) {
    return;
  }
  if (key.trim() === "") {
    await context.secrets.delete(API_KEY_SECRET);
    vscode.window.showInformationMessage("OpenHands: the client API key was removed.");
    return;
  }
  await context.secrets.store(API_KEY_SECRET, key.trim());
  vscode.window.showInformationMessage("OpenHands: the client API key is stored in VS Code's secret storage.");
}

export async function clearApiKey(context: vscode.ExtensionContext): Promise<void> {
  await context.secrets.delete(API_KEY_SECRET);
  vscode.window.showInformationMessage("OpenHands: the client API key was removed.");
}
