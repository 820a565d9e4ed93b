//! Points (积分): a month's points of the grid workers a user sees, the leaders'
//! manual adjustments behind them, and making one.

use automerge::Automerge;

use super::registry::{forbidden, month_bounds, registry_region_of};
use super::Engine;
use crate::access::check_points_adjuster;
use crate::directory::{Role, User};
use crate::doc::adjustment::{AdjustmentDoc, Month, NewAdjustment};
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, RegionCode};
use crate::points::{Adjustment, WorkerPoints};

impl Engine {
    /// Points (积分) for a calendar month (China Standard Time) under the
    /// directory's points rules, with the leaders' adjustments of the month: a
    /// grid worker's own, or every worker's of `region` (this user's when `None`)
    /// for a dispatcher; most points first. Empty when the directory awards no
    /// points.
    pub fn points(
        &self,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<WorkerPoints>> {
        self.points_of(&self.me()?, region, year, month)
    }

    /// [`Engine::points`] as `user` may see them (also the relay's, for a console
    /// user).
    pub(super) fn points_of(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<WorkerPoints>> {
        let bounds = month_bounds(year, month)?;
        let month = Month::new(year, month).map_err(Error::InvalidInput)?;
        let dir = self.directory()?;
        let Some(rules) = dir.points_rules() else {
            return Ok(Vec::new());
        };
        let is_worker = |id: &str| {
            id.parse()
                .ok()
                .and_then(|id| dir.user(&id))
                .is_some_and(|u| u.role == Role::GridWorker)
        };
        let worker = (user.role == Role::GridWorker).then(|| user.id.as_str().to_owned());
        match registry_region_of(user, region)? {
            Some(region) => self.db.read(|tx| {
                crate::points::month(
                    tx,
                    &region,
                    worker.as_deref(),
                    (month, bounds),
                    &rules,
                    is_worker,
                )
            }),
            None => Ok(Vec::new()),
        }
    }

    /// The leaders' adjustments of a month behind [`Engine::points`], in the order
    /// they were made: a grid worker's own, or those of `region` (this user's
    /// when `None`) for a dispatcher.
    pub fn points_adjustments(
        &self,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<Adjustment>> {
        self.points_adjustments_of(&self.me()?, region, year, month)
    }

    /// [`Engine::points_adjustments`] as `user` may see them.
    pub(super) fn points_adjustments_of(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<Adjustment>> {
        let month = Month::new(year, month).map_err(Error::InvalidInput)?;
        let worker = (user.role == Role::GridWorker).then(|| user.id.as_str().to_owned());
        match registry_region_of(user, region)? {
            Some(region) => self
                .db
                .read(|tx| crate::points::adjustments(tx, &region, worker.as_deref(), month)),
            None => Ok(Vec::new()),
        }
    }

    /// Add or take away points of a grid worker for a month, with a reason: a
    /// community or town dispatcher over her grid (or an administrator) only.
    /// Written once; durable when this returns.
    pub fn adjust_points(&self, input: NewAdjustment) -> Result<DocId> {
        let adjustment = self.new_adjustment(&self.me()?, input)?;
        let id = adjustment.id.clone();
        self.write(|tx| {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| adjustment.write_new(t))?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    /// The adjustment `me` would make: the directory awards points, the input is
    /// bounded, the worker is a grid worker, and `me` leads her grid.
    pub(super) fn new_adjustment(&self, me: &User, input: NewAdjustment) -> Result<AdjustmentDoc> {
        input.validate().map_err(Error::InvalidInput)?;
        let dir = self.directory()?;
        if dir.points_rules().is_none() {
            return Err(Error::InvalidInput("the directory awards no points".into()));
        }
        let worker = dir
            .user(&input.worker)
            .filter(|u| u.role == Role::GridWorker)
            .ok_or_else(|| Error::NotFound {
                what: "grid worker",
                id: input.worker.to_string(),
            })?;
        check_points_adjuster(me, &worker.region).map_err(forbidden)?;
        Ok(AdjustmentDoc {
            id: DocId::new(DocKind::Adjustment),
            grid: worker.region.clone(),
            worker: input.worker,
            month: input.month,
            points: input.points,
            reason: input.reason,
            by: me.id.clone(),
            at: self.now(),
        })
    }
}
