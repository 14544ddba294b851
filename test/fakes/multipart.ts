/**
 * A strict multipart/form-data reader (RFC 7578) for the fake OpenAI HTTP server: the whole body
 * is already in memory (its size bounded by the caller), parts are split on the boundary, and a
 * body that is not well formed throws.
 */

/** One part of a multipart/form-data body. */
export interface FormPart {
  /** `name` of the part's Content-Disposition. */
  name: string;
  /** `filename` of the Content-Disposition; null for a plain field. */
  filename: string | null;
  /** The part's Content-Type header; null when absent. */
  contentType: string | null;
  data: Buffer;
}

/** The boundary of a `multipart/form-data` Content-Type, or null when the type is another one. */
export function formBoundary(contentType: string | undefined): string | null {
  if (!contentType) return null;
  const [mediaType, ...params] = contentType.split(';');
  if (mediaType!.trim().toLowerCase() !== 'multipart/form-data') return null;
  for (const param of params) {
    const m = /^\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))\s*$/i.exec(param);
    if (m) return m[1] ?? m[2]!;
  }
  return null;
}

/** The value of `key` in a header's `; key="value"` parameters, or null. */
function headerParam(header: string, key: string): string | null {
  const re = new RegExp(`;\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s;]+))`, 'i');
  const m = re.exec(header);
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!;
}

function partHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed part header [line:${JSON.stringify(line.slice(0, 80))}]`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Split a multipart/form-data body into its parts; throws on a body that is not well formed. */
export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const parts: FormPart[] = [];
  let at = body.indexOf(dashBoundary);
  if (at < 0) throw new Error('boundary not found');
  for (;;) {
    at += dashBoundary.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts;
    const lineEnd = body.indexOf('\r\n', at);
    // Only transport padding (spaces, tabs) may follow a boundary on its line.
    if (lineEnd < 0 || !/^[ \t]*$/.test(body.toString('latin1', at, lineEnd))) throw new Error('malformed boundary line');
    const headEnd = body.indexOf('\r\n\r\n', lineEnd);
    if (headEnd < 0) throw new Error('part headers not terminated');
    const headers = partHeaders(body.toString('utf8', lineEnd + 2, headEnd));
    const next = body.indexOf(delimiter, headEnd + 4);
    if (next < 0) throw new Error('part not terminated by a boundary');
    const disposition = headers.get('content-disposition');
    if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) throw new Error('part without Content-Disposition: form-data');
    const name = headerParam(disposition, 'name');
    if (name === null || name === '') throw new Error('part without a name');
    parts.push({
      name,
      filename: headerParam(disposition, 'filename'),
      contentType: headers.get('content-type') ?? null,
      data: body.subarray(headEnd + 4, next),
    });
    at = next + 2;
  }
}
