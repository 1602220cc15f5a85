/**
 * The page's side of site/formula-worker.ts: asks for a formula's derivatives, keeps the
 * answers, and stops the worker when they take too long. mathjs's simplify can run for
 * minutes on an ordinary formula and cannot be interrupted but by ending its worker, so
 * the simplified derivatives get SIMPLIFY_BUDGET_MS; past it, a fresh worker works out
 * the unsimplified ones (milliseconds, as exact) in what is left of DERIVATIVE_BUDGET_MS.
 * A formula that fails both costs the page a message, never a frozen tab.
 */
import { DERIVATIVE_BUDGET_MS, SIMPLIFY_BUDGET_MS, type Derivatives } from './formula.ts';
import { message, type Message } from './i18n/index.ts';

export interface DerivativeRequest {
  readonly id: number;
  readonly text: string;
  /** Whether mathjs simplifies the derivatives: the first try does, the retry does not. */
  readonly simplify: boolean;
}

export type DerivativeReply = { readonly id: number; readonly ok: true; readonly dx: string; readonly dy: string } | { readonly id: number; readonly ok: false; readonly said: Message };

/** Where a formula's derivatives are: being worked out, known, or refused (with the message why). */
export type Derivation = { readonly status: 'pending' } | ({ readonly status: 'done' } & Derivatives) | { readonly status: 'refused'; readonly said: Message };

/** How long a worker may take to load before the page says it could not start one. */
const STARTUP_MS = 15_000;
/** Answers kept, so that going back to a formula is instant and a refused one is not retried on every redraw. */
const KEPT = 64;

export class DerivativeWorker {
  private worker: Worker | undefined;
  private ready = false;
  private job: { readonly id: number; readonly text: string; readonly simplify: boolean; timer: number } | undefined;
  private nextId = 0;
  private readonly answers = new Map<string, Derivation>();

  /** `settled` runs after each answer (or refusal) arrives, to redraw. */
  constructor(
    private readonly settled: () => void,
    private readonly budgetMs = DERIVATIVE_BUDGET_MS,
    private readonly simplifyMs = SIMPLIFY_BUDGET_MS,
  ) {}

  /** The derivatives of `text`, or 'pending' (and the work started) when not known yet. */
  get(text: string): Derivation {
    const known = this.answers.get(text);
    if (known) return known;
    if (this.job?.text !== text) this.start(text);
    return this.answers.get(text) ?? { status: 'pending' };
  }

  private start(text: string, simplify = true) {
    // One job at a time: a formula typed over another makes the other's answer moot.
    if (this.job) this.stop();
    if (!this.worker) {
      let worker: Worker;
      try {
        // Vite builds the worker into its own file; the page's CSP allows it with worker-src 'self'.
        worker = new Worker(new URL('./formula-worker.ts', import.meta.url), { type: 'module', name: 'formula derivatives' });
      } catch (error) {
        this.keep(text, { status: 'refused', said: message('workerFailed', { detail: (error as Error).message }) });
        return;
      }
      this.worker = worker;
      this.ready = false;
      worker.onmessage = (event: MessageEvent<DerivativeReply | { ready: true }>) => this.receive(worker, event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        if (worker === this.worker && this.job) this.refuse(message('workerFailed', { detail: event.message ?? '' }));
      };
    }
    const id = ++this.nextId;
    this.job = { id, text, simplify, timer: 0 };
    this.worker.postMessage({ id, text, simplify } satisfies DerivativeRequest);
    this.arm();
  }

  /**
   * The clock runs from when the worker has loaded (or for its loading, with a longer
   * limit): the simplified try gets simplifyMs, the unsimplified one the rest of budgetMs.
   */
  private arm() {
    const job = this.job;
    if (!job) return;
    clearTimeout(job.timer);
    const limit = !this.ready ? STARTUP_MS : job.simplify ? this.simplifyMs : this.budgetMs - this.simplifyMs;
    job.timer = window.setTimeout(() => {
      if (this.job !== job) return;
      if (!this.ready) this.refuse(message('workerSlowStart', { seconds: STARTUP_MS / 1000 }));
      else if (job.simplify) this.retryUnsimplified(job.text);
      else {
        this.refuse(message('formulaTimeout', { text: job.text, seconds: this.budgetMs / 1000 }));
      }
    }, limit);
  }

  /** Ends the worker that is simplifying (the only way to stop it) and asks a fresh one for the unsimplified derivatives. */
  private retryUnsimplified(text: string) {
    this.start(text, false);
    // A worker that could not start has left its refusal: show it now, not at the next redraw.
    if (this.answers.has(text)) this.settled();
  }

  private receive(worker: Worker, reply: DerivativeReply | { ready: true }) {
    if (worker !== this.worker) return;
    if ('ready' in reply) {
      this.ready = true;
      this.arm();
      return;
    }
    const job = this.job;
    if (!job || reply.id !== job.id) return;
    clearTimeout(job.timer);
    this.job = undefined;
    this.keep(job.text, reply.ok ? { status: 'done', dx: reply.dx, dy: reply.dy } : { status: 'refused', said: reply.said });
    this.settled();
  }

  private refuse(said: Message) {
    const text = this.job!.text;
    this.stop();
    this.keep(text, { status: 'refused', said });
    this.settled();
  }

  /** Ends the job in hand by ending its worker: mathjs cannot be interrupted otherwise. */
  private stop() {
    if (this.job) clearTimeout(this.job.timer);
    this.job = undefined;
    this.worker?.terminate();
    this.worker = undefined;
  }

  private keep(text: string, answer: Derivation) {
    this.answers.set(text, answer);
    if (this.answers.size > KEPT) this.answers.delete(this.answers.keys().next().value!);
  }
}
