// The Hugging Face Hub API under /hf, read and write, in the order express tries them.
import { hubLfsRoutes } from './lfs.ts';
import { hubReadRoutes } from './read.ts';
import { hubWriteRoutes } from './write.ts';

export { isHubRequest, sendHubError } from './shared.ts';

export const hubRoutes = [...hubReadRoutes, ...hubWriteRoutes, ...hubLfsRoutes];
