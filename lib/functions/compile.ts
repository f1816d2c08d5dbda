/**
 * A function's code checked at upload with TypeScript's own parser: a syntax error is refused
 * naming its line and column, a module without a default export is refused, and what is stored
 * to run is the module with its types stripped (`transpileModule`, no type checking).
 */
import { invalid } from "../core/errors.ts";

type TypeScript = typeof import("typescript");
let loading: Promise<TypeScript> | undefined;
/** TypeScript is large: loaded on the first upload, not at start. */
const typescript = () => loading ??= import("typescript").then((m) => m.default as TypeScript);

/** The module as it runs: JavaScript, or a 400 naming the line of the first syntax error. */
export async function compileFunction(code: string): Promise<string> {
  const ts = await typescript();
  const out = ts.transpileModule(code, {
    fileName: "function.ts",
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  const first = out.diagnostics?.[0];
  if (first) {
    const at = first.file && first.start !== undefined
      ? first.file.getLineAndCharacterOfPosition(first.start)
      : null;
    const where = at ? `line ${at.line + 1}, column ${at.character + 1}: ` : "";
    throw invalid(`code: ${where}${ts.flattenDiagnosticMessageText(first.messageText, " ")}`);
  }
  const source = ts.createSourceFile("function.ts", code, ts.ScriptTarget.Latest);
  const exportsDefault = source.statements.some((s) =>
    (ts.isExportAssignment(s) && !s.isExportEquals) ||
    (ts.canHaveModifiers(s) &&
      ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) ||
    (ts.isExportDeclaration(s) && s.exportClause !== undefined &&
      ts.isNamedExports(s.exportClause) &&
      s.exportClause.elements.some((e) => e.name.text === "default"))
  );
  if (!exportsDefault) {
    throw invalid(
      "code: the module has no default export; end it with " +
        "export default async ({ params }) => { ... }",
    );
  }
  return out.outputText;
}
