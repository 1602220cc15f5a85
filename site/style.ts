/**
 * How each optimizer's path looks: a colour AND a dash pattern AND a marker shape, so
 * no path is told from another by colour alone.
 */
export type Marker = 'circle' | 'square' | 'triangle' | 'diamond' | 'cross';

export interface PathStyle {
  readonly color: string;
  /** An SVG stroke-dasharray ('' for solid). */
  readonly dash: string;
  readonly marker: Marker;
}

// Colours with at least 3:1 contrast on white (WCAG's minimum for graphics).
const table: [string, string, string, Marker][] = [
  ['nesterov', '#0b5fa5', '', 'circle'],
  ['nesterov-book', '#c0392b', '7 4', 'square'],
  ['momentum', '#1b7a3e', '2 3', 'triangle'],
  ['sgd', '#555555', '9 3 2 3', 'diamond'],
  ['adam', '#7b3294', '', 'cross'],
  ['adamw', '#b35806', '7 4', 'circle'],
  ['nadam', '#2c7f8c', '2 3', 'square'],
  ['adagrad', '#8c510a', '9 3 2 3', 'triangle'],
  ['rmsprop', '#c51b7d', '', 'diamond'],
  ['momentum-pytorch', '#4d9221', '7 4', 'cross'],
  ['nesterov-pytorch', '#2166ac', '2 3', 'circle'],
  ['adagrad-book', '#a6611a', '', 'square'],
  ['rmsprop-book', '#d6604d', '9 3 2 3', 'triangle'],
  ['adam-book', '#542788', '7 4', 'diamond'],
  ['adamw-book', '#01665e', '2 3', 'cross'],
];

export const STYLES: Record<string, PathStyle> = Object.fromEntries(table.map(([name, color, dash, marker]) => [name, { color, dash, marker }]));

/** An SVG path for one marker centred at (x, y) with radius r. */
export function markerPath(marker: Marker, x: number, y: number, r: number): string {
  const X = x.toFixed(1);
  const Y = y.toFixed(1);
  const a = (v: number) => v.toFixed(1);
  switch (marker) {
    case 'circle':
      return `M${a(x + r)},${Y}A${r},${r} 0 1,0 ${a(x - r)},${Y}A${r},${r} 0 1,0 ${a(x + r)},${Y}Z`;
    case 'square':
      return `M${a(x - r)},${a(y - r)}H${a(x + r)}V${a(y + r)}H${a(x - r)}Z`;
    case 'triangle':
      return `M${X},${a(y - r * 1.2)}L${a(x + r)},${a(y + r * 0.8)}L${a(x - r)},${a(y + r * 0.8)}Z`;
    case 'diamond':
      return `M${X},${a(y - r * 1.3)}L${a(x + r)},${Y}L${X},${a(y + r * 1.3)}L${a(x - r)},${Y}Z`;
    case 'cross':
      return `M${a(x - r)},${a(y - r)}L${a(x + r)},${a(y + r)}M${a(x - r)},${a(y + r)}L${a(x + r)},${a(y - r)}`;
  }
}
