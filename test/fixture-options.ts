/**
 * A fixture case's options as the optimizer takes them, with its schedule: no Node
 * module here, so that the browser pages (test/webgpu-page.ts) build a case's schedule
 * with the very function the CPU fixture tests use (re-exported by test/fixtures.ts).
 */

export interface FixtureConfig {
  optimizer: string;
  options: Record<string, unknown>;
  compareState?: boolean;
}

/**
 * A case's options as the optimizer takes them: `extra` added, and under the schedule
 * 'inverse-time' the generator's inverse_time, lr / (1 + 0.1 t), with lr the case's
 * (or `defaultLr` where the case leaves lr to the optimizer's default).
 */
export function caseOptions(config: FixtureConfig, schedule: 'inverse-time' | null | undefined, extra: Record<string, unknown> = {}, defaultLr?: number): Record<string, unknown> {
  const options: Record<string, unknown> = { ...config.options, ...extra };
  if (schedule === 'inverse-time') {
    const base = (options.lr as number | undefined) ?? defaultLr;
    options.lr = (t: number) => base! / (1 + 0.1 * t);
  }
  return options;
}
