/**
 * `${ENV_VAR}` substitution in configuration strings. `${NAME:-fallback}` uses the fallback when the
 * variable is unset or empty; `$${...}` writes a literal `${...}`. An unset variable without a
 * fallback is a configuration problem, never an empty string.
 */

/** Environment used for substitution (`process.env` by default). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Result of {@link substituteEnv}: the new string, or the problems found (one per bad reference). */
export type Substitution = { ok: true; value: string; substituted: boolean } | { ok: false; problems: string[] };

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Replace every `${NAME}` / `${NAME:-fallback}` in `s` from `env`. */
export function substituteEnv(s: string, env: Env): Substitution {
  if (!s.includes('${')) return { ok: true, value: s, substituted: false };
  const problems: string[] = [];
  let out = '';
  let substituted = false;
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      const close = s.indexOf('}', i + 3);
      // The escape keeps the reference as written, braces included.
      const end = close < 0 ? s.length : close + 1;
      out += s.slice(i + 1, end);
      i = end;
      continue;
    }
    if (!s.startsWith('${', i)) {
      out += s[i];
      i++;
      continue;
    }
    const close = s.indexOf('}', i + 2);
    if (close < 0) {
      problems.push(`unterminated \${ in "${s.slice(i, i + 40)}" (write $\${ for a literal \${)`);
      break;
    }
    const body = s.slice(i + 2, close);
    i = close + 1;
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME_RE.test(name)) {
      problems.push(`invalid environment variable reference \${${body}} (write $\${ for a literal \${)`);
      continue;
    }
    const v = env[name];
    if (sep >= 0) {
      out += v === undefined || v === '' ? body.slice(sep + 2) : v;
    } else if (v === undefined) {
      problems.push(`environment variable ${name} is not set`);
      continue;
    } else {
      out += v;
    }
    substituted = true;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out, substituted };
}
