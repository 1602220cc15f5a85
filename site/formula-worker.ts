/**
 * Differentiates the formulas the page sends, off the page's thread: mathjs's
 * `derivative` can simplify for minutes on a short formula; the page stops this worker
 * when its try outlasts its share of the budget, and asks a fresh one for the
 * unsimplified derivatives (site/derivatives.ts).
 */
import { FormulaError, differentiate } from './formula.ts';
import type { DerivativeReply, DerivativeRequest } from './derivatives.ts';
import { message } from './i18n/index.ts';

// The DOM's types describe a window; a worker's global posts without a target origin.
const scope = self as unknown as {
  postMessage(message: DerivativeReply | { readonly ready: true }): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<DerivativeRequest>) => void): void;
};

scope.addEventListener('message', ({ data }) => {
  try {
    const { dx, dy } = differentiate(data.text, { simplify: data.simplify });
    scope.postMessage({ id: data.id, ok: true, dx, dy });
  } catch (error) {
    const said = error instanceof FormulaError ? error.said : message('formulaNotDifferentiable', { text: data.text, detail: String(error) });
    scope.postMessage({ id: data.id, ok: false, said });
  }
});
// The page starts its clock on the derivative once the worker has loaded.
scope.postMessage({ ready: true });
