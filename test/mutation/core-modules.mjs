import { readFileSync } from 'node:fs';
import ts from 'typescript';

/**
 * Stryker `mutate` patterns for a module list such as stryker.config.mjs's CORE_MODULES:
 * `file` for a whole module, `file:FIRST-LAST` line ranges for named top-level functions.
 * The ranges are found by parsing the file on every run, so that editing a module does not
 * silently move its range onto other code; a name that is no longer there is an error.
 */
export function coreMutatePatterns(modules) {
  return Object.entries(modules).flatMap(([file, what]) => {
    if (what === true) return [file];
    const spans = functionLines(file);
    return what.map((name) => {
      const span = spans.get(name);
      if (!span) throw new Error(`${file} has no top-level function ${name} (see CORE_MODULES in stryker.config.mjs)`);
      return `${file}:${span.first}-${span.last}`;
    });
  });
}

/** Top-level functions (declarations and `const x = () => …`) by name, as 1-based line spans. */
function functionLines(file) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const line = (pos) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const spans = new Map();
  for (const statement of source.statements) {
    if (ts.isFunctionDeclaration(statement) && statement.name) {
      spans.set(statement.name.text, { first: line(statement.getStart()), last: line(statement.getEnd()) });
    } else if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.initializer && (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer))) {
          spans.set(d.name.text, { first: line(d.getStart()), last: line(d.getEnd()) });
        }
      }
    }
  }
  return spans;
}
