/**
 * The templates a configuration holds (instructions, opening line, DTMF message), compiled against
 * the names each may use. The loader compiles them to report problems; the call code compiles them
 * once per configuration with {@link compileConfigTemplates}.
 */

import { callTemplateAllowed, compileTemplate, type Template } from '../util/template';
import type { AgentConfig } from './schema';

/** The compiled templates of one configuration. */
export interface ConfigTemplates {
  /** `ai.instructions` (or the content of `ai.instructionsFile`). */
  instructions: Template;
  /** `ai.openingLine`. */
  openingLine: Template;
  /** `calls.dtmf.template`; may also use `{{digit}}`. */
  dtmf: Template;
  /** `ai.prompt.variables`: one template per variable, rendered per call like the instructions. */
  promptVariables: Record<string, Template>;
}

/** One template to compile: where it came from, its text and the names it may use. */
export interface TemplateSpec {
  key: keyof ConfigTemplates;
  /** For `promptVariables`: the variable's name. */
  name?: string;
  path: string;
  text: string;
  allowed: string[];
}

/** The templates of `cfg`; `instructionsFromFile` names `ai.instructionsFile` as the source in problems. */
export function templateSpecs(cfg: AgentConfig, instructionsFromFile = cfg.ai.instructionsFile !== undefined): TemplateSpec[] {
  const allowed = callTemplateAllowed(Object.keys(cfg.variables));
  return [
    { key: 'instructions', path: instructionsFromFile ? 'ai.instructionsFile' : 'ai.instructions', text: cfg.ai.instructions, allowed },
    { key: 'openingLine', path: 'ai.openingLine', text: cfg.ai.openingLine, allowed },
    { key: 'dtmf', path: 'calls.dtmf.template', text: cfg.calls.dtmf.template, allowed: [...allowed, 'digit'] },
    ...Object.entries(cfg.ai.prompt.variables).map(([name, text]): TemplateSpec => ({
      key: 'promptVariables',
      name,
      path: `ai.prompt.variables.${name}`,
      text,
      allowed,
    })),
  ];
}

/**
 * Compile the templates of a loaded configuration.
 * @throws ConfigError when a template is invalid (a loaded configuration has already been checked).
 */
export function compileConfigTemplates(cfg: AgentConfig): ConfigTemplates {
  const out: Partial<ConfigTemplates> & { promptVariables: Record<string, Template> } = { promptVariables: {} };
  for (const s of templateSpecs(cfg)) {
    const t = compileTemplate(s.text, { allowed: s.allowed, path: s.path });
    if (s.key === 'promptVariables') out.promptVariables[s.name!] = t;
    else out[s.key] = t;
  }
  return out as ConfigTemplates;
}
