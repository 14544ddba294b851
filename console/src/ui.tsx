/** Small shared pieces of markup. */

/** A table head of column headers (a blank, screen-reader-only name for action columns). */
export function TableHead(props: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {props.cols.map((c) => (
          <th key={c} scope="col">
            {c.startsWith('sr:') ? <span class="sr-only">{c.slice(3)}</span> : c}
          </th>
        ))}
      </tr>
    </thead>
  );
}
