// tsyringe reads constructor metadata through the Reflect metadata API and refuses to load
// without it. Importing the polyfill here, before tsyringe, makes every module that takes its
// DI from this file safe on its own: none depends on another having loaded the polyfill first.
import 'reflect-metadata';

/**
 * The dependency-injection vocabulary of Nitrogen: tsyringe's decorators, providers and
 * container types. Plugins take them from here (or from the `nitrogen` entry), so a plugin and
 * the server share one tsyringe and its metadata, whichever copy a plugin's package resolves.
 */
export { container as rootContainer, inject, injectable, instanceCachingFactory, Lifecycle, type DependencyContainer, type InjectionToken } from 'tsyringe';
