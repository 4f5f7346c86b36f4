/** The nbprod icon (a box leaving the notebook) for the side bar tab. */
import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h10l2 2v4h-2V5.8L13.2 5H6v14h6v2H4z"/>
    <path d="M8 8h4v2H8zm0 4h3v2H8z"/>
    <path d="M14 12.2l4-2.2 4 2.2v5.1L18 19.5l-4-2.2zm2 1.3v2.6l2 1.1 2-1.1v-2.6l-2 1.1z"/>
  </g>
</svg>`;

export const nbprodIcon = new LabIcon({ name: 'nbprod:icon', svgstr: SVG });
