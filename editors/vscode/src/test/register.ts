// Makes `require("vscode")` return the stand-in (fakeVscode.ts): import this before the extension's modules.

import Module from "module";
import * as fakeVscode from "./fakeVscode";

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Load };
const original = loader._load;
loader._load = function (request: string, parent: unknown, isMain: boolean) {
  return request === "vscode" ? fakeVscode : original.call(this, request, parent, isMain);
};
