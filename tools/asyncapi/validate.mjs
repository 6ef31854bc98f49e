// Validate an AsyncAPI document with the reference parser; exit 1 on any error diagnostic.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs <asyncapi.json>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"));
const severities = ["error", "warning", "info", "hint"];
let errors = 0;
for (const d of diagnostics) {
  const level = severities[d.severity] ?? String(d.severity);
  if (d.severity === 0) errors += 1;
  console.log(`${level}: ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
}
if (!document || errors > 0) {
  console.log(`INVALID: ${errors} error(s)`);
  process.exit(1);
}
console.log(`VALID: asyncapi ${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages, ${document.operations().length} operations`);
