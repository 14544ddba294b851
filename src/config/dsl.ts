/**
 * The small schema language the configuration is written in. Each node carries its doc line, unit,
 * default, bounds, secrecy and reload class, so the one schema in `schema.ts` is at once the
 * validator, the source of every default, the typed `AgentConfig` (inferred) and the reference docs.
 */

/** Whether a changed key takes effect on SIGHUP (`live`, new calls use it) or needs a restart. */
export type ReloadClass = 'live' | 'restart';

/** Checks a string value; returns a problem message, or undefined when the value is fine. */
export type StringCheck = (value: string) => string | undefined;

/** A literal an enum may take. */
export type Literal = string | number | boolean;

/** Fields every node has. `T` is the value type after loading (phantom, for inference only). */
interface BaseNode<T> {
  /** One-line description of the key (without unit and default, which are rendered from the node). */
  readonly doc: string;
  /** `default`: filled when absent; `optional`: may stay undefined; `required`: must be present. */
  readonly presence: 'default' | 'optional' | 'required';
  /** Default value (presence `default` only). */
  readonly default?: T;
  /** Secret: replaced by `[redacted]` in `redactConfig` and never logged. */
  readonly secret?: boolean;
  /** Reload class; inherited by every key below when set on a section. */
  readonly reload?: ReloadClass;
  /** Phantom field carrying the loaded type (boxed, so an optional `T` keeps its `undefined`). */
  readonly __type?: { readonly t: T };
}

/** A string. `check` validates its format (SIP URI, URL, host...). */
export interface StringNode<T = string> extends BaseNode<T> {
  readonly kind: 'string';
  readonly maxLength: number;
  readonly minLength: number;
  readonly check?: StringCheck;
  /** What `check` expects, for docs (e.g. `SIP URI`). */
  readonly format?: string;
}

/** A filesystem path, resolved against the config file's directory. */
export interface PathNode<T = string> extends BaseNode<T> {
  readonly kind: 'path';
  /** The file must exist and be readable when the config is loaded. */
  readonly mustExist: boolean;
}

/**
 * A `*File` key: a path whose content fills the sibling key `fills` (secrets for systemd
 * `LoadCredential=`, or long text such as instructions).
 */
export interface FileNode<T = string | undefined> extends BaseNode<T> {
  readonly kind: 'file';
  /** Sibling key that receives the file's content. */
  readonly fills: string;
  /** Largest file accepted, in bytes. */
  readonly maxBytes: number;
  /** Secrets are trimmed (a trailing newline is never part of a password). */
  readonly trim: 'all' | 'end';
}

/** A number with bounds. */
export interface NumberNode<T = number> extends BaseNode<T> {
  readonly kind: 'number';
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  /** Unit for docs: `ms`, `s`, `Hz`... */
  readonly unit?: string;
}

/** true/false (YAML 1.1 yes/no/on/off are accepted too). */
export interface BooleanNode<T = boolean> extends BaseNode<T> {
  readonly kind: 'boolean';
}

/** One of a fixed list of literals. */
export interface EnumNode<T = Literal> extends BaseNode<T> {
  readonly kind: 'enum';
  readonly values: readonly Literal[];
  /** Match strings case-insensitively and store the canonical spelling. */
  readonly caseInsensitive: boolean;
}

/** A mapping with a fixed set of keys; unknown keys are problems. */
export interface ObjectNode<T = unknown> extends BaseNode<T> {
  readonly kind: 'object';
  readonly fields: Readonly<Record<string, AnyNode>>;
  /** Keys that once meant something (or are common mistakes) with the explanation to show. */
  readonly retired?: Readonly<Record<string, string>>;
}

/** A list of items of one node type. */
export interface ListNode<T = unknown> extends BaseNode<T> {
  readonly kind: 'list';
  readonly item: AnyNode;
  readonly minItems: number;
  readonly maxItems: number;
  /** Items must be distinct by this key (e.g. webhook name); message names the duplicate. */
  readonly uniqueBy?: (item: unknown) => string | undefined;
}

/** A mapping from free names to values of one node type. */
export interface MapNode<T = unknown> extends BaseNode<T> {
  readonly kind: 'map';
  readonly value: AnyNode;
  readonly keyPattern: RegExp;
  /** What a key must look like, for messages. */
  readonly keyDoc: string;
  readonly maxEntries: number;
  /** Placeholder for the key in docs (`<name>`). */
  readonly keyName: string;
}

/** An object that can also be switched off (`off`, `false`, `null`), e.g. `ai.transcription`. */
export interface NullableNode<T = unknown> extends BaseNode<T> {
  readonly kind: 'nullable';
  readonly inner: ObjectNode;
  /** Default when absent: on (inner defaults) or off (null). */
  readonly defaultOn: boolean;
}

/** Free-form JSON (a JSON Schema object for webhook parameters). */
export interface JsonNode<T = unknown> extends BaseNode<T> {
  readonly kind: 'json';
  readonly check?: (value: unknown) => string | undefined;
  readonly maxBytes: number;
}

/** Any schema node. */
export type AnyNode =
  | StringNode<unknown>
  | PathNode<unknown>
  | FileNode<unknown>
  | NumberNode<unknown>
  | BooleanNode<unknown>
  | EnumNode<unknown>
  | ObjectNode<unknown>
  | ListNode<unknown>
  | MapNode<unknown>
  | NullableNode<unknown>
  | JsonNode<unknown>;

/** The loaded type of a node. */
export type Infer<N> = N extends { readonly __type?: { readonly t: infer T } } ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<F> = { [K in keyof F]: undefined extends Infer<F[K]> ? K : never }[keyof F];
/** The loaded type of an object node's fields: keys that may be undefined become optional. */
export type InferFields<F> = Simplify<
  { -readonly [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> } & {
    -readonly [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined>;
  }
>;

interface Common {
  doc: string;
  secret?: boolean;
  reload?: ReloadClass;
}

type Presence<T> = { default: T } | { required: true } | { optional?: true };
type Typed<P, T> = P extends { default: unknown } ? T : P extends { required: true } ? T : T | undefined;

function presenceOf(o: object): BaseNode<unknown>['presence'] {
  if ('default' in o && (o as { default: unknown }).default !== undefined) return 'default';
  if ('required' in o && (o as { required: unknown }).required === true) return 'required';
  return 'optional';
}

/** A string key. Strings are capped at 4096 characters unless `maxLength` says otherwise. */
export function str<P extends Presence<string>>(
  o: Common & P & { maxLength?: number; minLength?: number; check?: StringCheck; format?: string },
): StringNode<Typed<P, string>> {
  return {
    kind: 'string',
    presence: presenceOf(o),
    maxLength: 4096,
    minLength: 0,
    ...o,
  } as unknown as StringNode<Typed<P, string>>;
}

/** A path key (resolved against the config file's directory). */
export function path<P extends Presence<string>>(o: Common & P & { mustExist?: boolean }): PathNode<Typed<P, string>> {
  return { kind: 'path', presence: presenceOf(o), mustExist: false, ...o } as unknown as PathNode<Typed<P, string>>;
}

/** A `*File` key whose content fills the sibling `fills`. */
export function file(o: Common & { fills: string; maxBytes?: number; trim?: 'all' | 'end' }): FileNode<string | undefined> {
  return { kind: 'file', presence: 'optional', maxBytes: 64 * 1024, trim: 'all', ...o };
}

/** A number key; integers unless `integer: false`. */
export function num<P extends Presence<number>>(
  o: Common & P & { min: number; max: number; integer?: boolean; unit?: string },
): NumberNode<Typed<P, number>> {
  return { kind: 'number', presence: presenceOf(o), integer: true, ...o } as unknown as NumberNode<Typed<P, number>>;
}

/** A boolean key (always with a default). */
export function bool(o: Common & { default: boolean }): BooleanNode<boolean> {
  return { kind: 'boolean', presence: 'default', ...o };
}

/** An enum key. */
export function oneOf<const V extends readonly Literal[], P extends Presence<V[number]>>(
  o: Common & P & { values: V; caseInsensitive?: boolean },
): EnumNode<Typed<P, V[number]>> {
  return { kind: 'enum', presence: presenceOf(o), caseInsensitive: false, ...o } as unknown as EnumNode<Typed<P, V[number]>>;
}

/** An object key (a section); absent means all defaults. */
export function obj<F extends Record<string, AnyNode>>(
  o: Common & { fields: F; retired?: Record<string, string> },
): ObjectNode<InferFields<F>> {
  return { kind: 'object', presence: 'default', ...o } as unknown as ObjectNode<InferFields<F>>;
}

/** A list key. Absent means `[]` unless `required` (then at least `minItems`). */
export function list<N extends AnyNode>(
  o: Common & {
    item: N;
    minItems?: number;
    maxItems: number;
    required?: boolean;
    default?: Infer<N>[];
    uniqueBy?: (item: Infer<N>) => string | undefined;
  },
): ListNode<Infer<N>[]> {
  return {
    kind: 'list',
    presence: o.required ? 'required' : 'default',
    minItems: 0,
    ...o,
    default: o.default ?? [],
  } as unknown as ListNode<Infer<N>[]>;
}

/** A map from names (matching `keyPattern`) to values of one node type. Absent means `{}`. */
export function map<N extends AnyNode>(
  o: Common & { value: N; keyPattern: RegExp; keyDoc: string; maxEntries: number; keyName?: string },
): MapNode<Record<string, Infer<N>>> {
  return {
    kind: 'map',
    presence: 'default',
    default: {},
    keyName: '<name>',
    ...o,
  } as unknown as MapNode<Record<string, Infer<N>>>;
}

/** An object that may be switched off; loads as the object or `null`. */
export function nullable<T>(o: Common & { inner: ObjectNode<T>; defaultOn: boolean }): NullableNode<T | null> {
  return { kind: 'nullable', presence: 'default', ...o } as unknown as NullableNode<T | null>;
}

/** A free-form JSON key with a default. */
export function json<T>(
  o: Common & { default: T; check?: (value: unknown) => string | undefined; maxBytes?: number },
): JsonNode<T> {
  return { kind: 'json', presence: 'default', maxBytes: 64 * 1024, ...o } as unknown as JsonNode<T>;
}
