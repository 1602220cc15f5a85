/** NAdamW as TF.js ops: NAdam's (nadam.ts), whose hyperparameters carry the decoupled decay. */
import type { NAdamHyper } from '../../rules/nadam.ts';
import { nadamOps } from './nadam.ts';
import type { RuleOps } from './ops.ts';

export const nadamwOps: RuleOps<NAdamHyper> = nadamOps;
