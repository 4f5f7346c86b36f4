/**
 * The MIME renderer extension: nbprod's JSON result bundles drawn natively in JupyterLab.
 * Rank 0 puts them ahead of the HTML that travels in the same bundle for other frontends.
 * The status view ranks 10: behind an ipywidgets view (rank 0) of the same output, so an
 * interactive `%nbprod status` dashboard that also carries the JSON still shows as widgets.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { checkRendererFactory, packageRendererFactory, statusRendererFactory } from './renderers';

const extensions: IRenderMime.IExtension[] = [
  {
    id: 'nbprod:check-renderer',
    description: 'Renders nbprod check results (application/vnd.nbprod.check+json).',
    rendererFactory: checkRendererFactory,
    rank: 0,
    dataType: 'json'
  },
  {
    id: 'nbprod:status-renderer',
    description: 'Renders `%nbprod status` (application/vnd.nbprod.status+json).',
    rendererFactory: statusRendererFactory,
    rank: 10,
    dataType: 'json'
  },
  {
    id: 'nbprod:package-renderer',
    description: 'Renders a `%nbprod package` result (application/vnd.nbprod.package+json).',
    rendererFactory: packageRendererFactory,
    rank: 0,
    dataType: 'json'
  }
];

export default extensions;
