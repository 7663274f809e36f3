/**
 * A value in HCL's native syntax. Strings are JSON strings with HCL's template sequences
 * (`${`, `%{`) escaped, so that no value is interpolated.
 */
export function hcl(value: unknown, indent = 0): string {
  const pad = '  '.repeat(indent);
  if (typeof value === 'string') return JSON.stringify(value).replace(/([$%])\{/g, (_m, c: string) => `${c}${c}{`);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map((v) => hcl(v, indent)).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${pad}  ${hcl(k)} = ${hcl(v, indent + 1)}`).join('\n')}\n${pad}}`;
  }
  return 'null';
}
