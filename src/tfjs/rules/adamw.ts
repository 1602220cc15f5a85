/** AdamW as TF.js ops: Adam's (adam.ts), whose hyperparameters carry the decoupled decay. */
import type { AdamHyper } from '../../rules/adam.ts';
import { adamOps } from './adam.ts';
import type { RuleOps } from './ops.ts';

export const adamwOps: RuleOps<AdamHyper> = adamOps;
